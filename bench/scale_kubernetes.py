"""Kubernetes-mode scale: the real API and operator against the emulated API server, 1k -> 10k keys.

API: N Ready KmsKeys and their sealed material Secrets are written straight into the emulator,
laid out as the operator leaves them (kms_core mints and seals with the run's root key;
`kms_kube.layout` shapes the Secret). A fresh `kubekms-api --store kubernetes` then starts
and is timed until it listens, until /readyz is 200, and until the last-written key answers by
name and encrypts (its watch caches have listed every KmsKey and Secret); then its RSS, and wrk
latency of get-by-name and encrypt on that warm key and of random 100-key list pages.
Operator: on a fresh emulator the real `kubekms-operator` runs while M new AES KmsKeys are
created; timed until 50/90/99/100 % are Ready (status read from the emulator), with its RSS.
The emulator is Python in this process: its thread's CPU time is reported next to the wall time
so its share of each phase is visible.
Security property: the root key and ServiceAccount token are random per run and never printed.

    python bench/scale_kubernetes.py [--sizes 1000 10000] [--operator-keys 1000] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import loadgen
from processes import Server, call, cpu_seconds, free_port

from kms_core import material, ownership
from kms_core.model import Algorithm, KeyUsage
from kms_core.sealing.rootkey import RootKeySealer
from kms_kube import layout as manifests
from kms_operator import status

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the emulated API server is test infrastructure

from kube import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster  # noqa: E402

TENANT = "bench"  # the tenant namespace, i.e. the API's projectId
AES = Algorithm.AES_256_GCM
KEYS = "/api/v1/kms/keys"


def key_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def kmskey(name: str) -> dict[str, Any]:
    spec = {"keyUsage": "encrypt-decrypt", "algorithm": AES.value}
    return {"apiVersion": "kubekms.io/v1alpha1", "kind": "KmsKey", "metadata": {"name": name}, "spec": spec}


def real_shape(obj: dict[str, Any], managers: tuple[str, ...], notes: dict[str, str]) -> dict[str, Any]:
    """Metadata as a real API server returns it: one managedFields entry per writer (with the
    fieldsV1 map of what it owns) and the annotations kubectl and Kopf leave (`--real-shape`)."""
    meta = obj.setdefault("metadata", {})
    meta["managedFields"] = [
        {"manager": m, "operation": "Update", "apiVersion": obj.get("apiVersion", "v1"),
         "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:annotations": {f"f:{k}": {} for k in notes},
                                     "f:labels": {".": {}, "f:kubekms.io/key-id": {}}},
                      "f:spec": {".": {}, "f:algorithm": {}, "f:keyUsage": {}},
                      "f:status": {".": {}, "f:conditions": {}, "f:keyId": {}, "f:version": {}}},
         **({"subresource": "status"} if m.endswith("status") else {})}
        for m in managers
    ]
    meta.setdefault("annotations", {}).update(notes)
    return obj


def kopf_notes(name: str) -> dict[str, str]:
    spec = json.dumps({"spec": {"keyUsage": "encrypt-decrypt", "algorithm": AES.value}})
    applied = json.dumps({"apiVersion": "kubekms.io/v1alpha1", "kind": "KmsKey",
                          "metadata": {"name": name, "namespace": TENANT, "annotations": {}},
                          "spec": {"keyUsage": "encrypt-decrypt", "algorithm": AES.value}})
    return {"operator.kubekms.io/last-handled-configuration": spec,
            "kubectl.kubernetes.io/last-applied-configuration": applied}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Emulator:
    """The emulated cluster plus bulk helpers that run on its own loop (no thread hop per write)."""

    def __init__(self, workdir: Path, root_key: str) -> None:
        self.cluster = Cluster(namespaces=("default", "kube-system", TENANT, KUBEKMS_NAMESPACE)).start()
        self.cluster.apply_file(REPO / "crds" / "kmskeys.kubekms.io.yaml")
        self.kubeconfig = self.cluster.write_kubeconfig(workdir / f"kubeconfig-{self.cluster.port}")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HSM_", "KUBEKMS_", "KUBERNETES_"))},
            "KUBECONFIG": str(self.kubeconfig),
            "KUBEKMS_NAMESPACE": KUBEKMS_NAMESPACE,
            "ROOT_ENCRYPTION_KEY": root_key,
            "KUBEKMS_LOG_LEVEL": "info",
        }
        self.sealer = RootKeySealer.from_base64(root_key)
        assert self.cluster._thread is not None
        self.tid = self.cluster._thread.native_id

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return self.cluster._call(coro, timeout)

    def cpu(self) -> float:
        return cpu_seconds(os.getpid(), self.tid)

    def populate(self, start: int, stop: int, timeout: float, shaped: bool = False) -> float:
        """Write Ready keys k<start>..k<stop-1> as the operator would; returns keys/s. `shaped`:
        with managedFields and kubectl/Kopf annotations, as a real API server would hold them."""
        emu = self.cluster.emulator
        assert emu is not None

        layout = {"namespace": KUBEKMS_NAMESPACE, "owner_namespace": TENANT, "kek_id": self.sealer.kek_id}
        layout |= {"algorithm": AES.value, "key_usage": "encrypt-decrypt"}
        ready = status.Health.ok(False)

        async def write() -> None:
            for i in range(start, stop):
                name, kid = f"k{i}", key_id(i)
                body = kmskey(name)
                if shaped:
                    body = real_shape(body, ("kubectl-client-side-apply", "kopf", "kubekms-operator/status"),
                                      kopf_notes(name))
                obj = await emu.create_object(KMSKEYS, body, namespace=TENANT)
                sealed = material.mint(kid, 1, AES, self.sealer)
                record = ownership.seal_record(ownership.OwnerRecord(
                    key_id=kid, namespace=TENANT, name=name, uid=obj["metadata"]["uid"],
                    usage=KeyUsage.ENCRYPT_DECRYPT, algorithm=AES, exportable=False,
                ), self.sealer)
                body = manifests.secret(key_id=kid, owner_name=name, sealed=sealed, record=record, **layout)
                if shaped:
                    body = real_shape(body, ("kubekms-operator",), {})
                await emu.create_object(SECRETS, body, namespace=KUBEKMS_NAMESPACE)
                fields = {"keyId": kid, "version": 1, "secretName": manifests.secret_name(kid)}
                new = status.desired({}, ready, obj["metadata"].get("generation"), **fields)
                await emu.patch_object(KMSKEYS, TENANT, name, {"status": new}, subresource="status")

        began = time.perf_counter()
        self.run(write(), timeout)
        return (stop - start) / (time.perf_counter() - began)

    def create_unready(self, prefix: str, count: int, timeout: float) -> None:
        emu = self.cluster.emulator
        assert emu is not None

        async def write() -> None:
            for i in range(count):
                await emu.create_object(KMSKEYS, kmskey(f"{prefix}{i}"), namespace=TENANT)

        self.run(write(), timeout)

    def count_ready(self) -> int:
        """Ready KmsKeys in the tenant namespace, counted in place (a list would deep-copy them all)."""
        emu = self.cluster.emulator
        assert emu is not None

        async def count() -> int:
            res = next(r for r in emu.resources if r.plural == "kmskeys")
            return sum(
                1
                for (r, ns, _), obj in emu.objects.items()
                if r == res and ns == TENANT and not obj.deleted
                for c in (obj.raw.get("status") or {}).get("conditions") or []
                if c.get("type") == "Ready" and c.get("status") == "True"
            )

        return int(self.run(count(), 60))

    def stop(self) -> None:
        self.cluster.stop()


def wait_until(probe: Callable[[], bool], timeout: float, what: str, proc: Server) -> float:
    """Poll `probe` every 50 ms; seconds it took. Fails on timeout or if `proc` exits."""
    began = time.monotonic()
    while not probe():
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.logs()[-3000:]}")
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:g}s:\n{proc.logs()[-3000:]}")
        time.sleep(0.05)
    return time.monotonic() - began


def ok(
    server: Server, method: str, path: str, token: str, body: Any = None, seen: Counter[str] | None = None
) -> bool:
    """One request; whether it was a 200. `seen` counts the replies (status or error type)."""
    try:
        code: int | str = call(server, method, path, token, body)[0]
    except (OSError, ValueError) as exc:
        code = type(exc).__name__
    if seen is not None:
        seen[str(code)] += 1
    return code == 200


def measure_api(emu: Emulator, size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    token = emu.cluster.rbac.add_service_account(TENANT, "bench")
    emu.cluster.rbac.allow(
        f"system:serviceaccount:{TENANT}:bench", ["get", "list", "encrypt"], namespace=TENANT
    )
    port, last = free_port(), size - 1
    flags = f"--store kubernetes --host 127.0.0.1 --port {port} --metrics-port 0".split()
    cmd = [*loadgen.taskset(args.server_cpus), sys.executable, "-m", "kms_api", *flags]
    # One identity carries the whole load: the per-identity rate limit would measure the limiter.
    env = {**emu.env, "KUBEKMS_RATE_LIMIT_RPS": "0"}
    emu_cpu, began = emu.cpu(), time.monotonic()
    api = Server(f"api-{size}", cmd, env, workdir / f"api-{size}.log", port)
    try:
        listen = time.monotonic() - began if api.wait_ready(args.timeout) else 0.0
        ready = listen + wait_until(lambda: ok(api, "GET", "/readyz", ""), args.timeout, "/readyz", api)
        by_name = f"{KEYS}/key-name/k{last}?projectId={TENANT}"
        encrypt = f"{KEYS}/{key_id(last)}/encrypt"
        plain = {"plaintext": base64.b64encode(os.urandom(64)).decode()}
        seen: Counter[str] = Counter()
        synced = ready + wait_until(
            lambda: (
                ok(api, "GET", by_name, token, seen=seen) and ok(api, "POST", encrypt, token, plain, seen)
            ),
            args.timeout,
            "the last key",
            api,
        )
        entry: dict[str, Any] = {
            "keys": size,
            "listening_s": listen,
            "readyz_s": ready,
            "synced_s": synced,
            "api_cpu_s_to_sync": cpu_seconds(api.proc.pid),
            "emulator_cpu_s_to_sync": emu.cpu() - emu_cpu,
            "rss_mib": api.rss_mib(),
            "sync_replies": dict(seen),
        }
        common = {"connections": args.connections, "seconds": args.seconds, "token": token}
        common["cpus"] = args.load_cpus
        body = json.dumps(plain).encode()
        pages = {"path_template": f"{KEYS}?projectId={TENANT}&offset={{n}}&limit=100", "path_range": size}
        for kind, run in (
            ("get_by_name", loadgen.run(api.url + by_name, **common)),
            ("encrypt", loadgen.run(api.url + encrypt, body=body, **common)),
            ("list_page", loadgen.run(api.url, **pages, **common)),
        ):
            if run.failed:  # a latency of failed requests would be meaningless
                raise RuntimeError(f"{kind} at {size} keys: {run.failed} failed requests {run.errors}")
            entry[kind] = run.as_dict()
        entry["rss_mib_after_load"] = api.rss_mib()
        return entry
    finally:
        api.stop()


def measure_operator(workdir: Path, root_key: str, count: int, args: argparse.Namespace) -> dict[str, Any]:
    emu = Emulator(workdir, root_key)
    cmd = [*loadgen.taskset(args.server_cpus), sys.executable, "-m", "kms_operator"]
    op = Server(f"operator-{count}", cmd, emu.env, workdir / f"operator-{count}.log", 0)
    try:
        wait_until(lambda: "KubeKMS operator ready" in op.logs(), args.timeout, "operator startup", op)
        idle_rss, op_cpu, emu_cpu = op.rss_mib(), cpu_seconds(op.proc.pid), emu.cpu()
        began = time.monotonic()
        emu.create_unready("new", count, args.timeout)
        created = time.monotonic() - began
        marks: dict[str, float] = {}

        def progress() -> bool:
            ready = emu.count_ready()
            for pct in (50, 90, 99, 100):
                if ready * 100 >= pct * count and f"ready_{pct}pct_s" not in marks:
                    # Integer test: 0.99 * 100 is not 99 in floating point.
                    marks[f"ready_{pct}pct_s"] = time.monotonic() - began
                    marks[f"operator_cpu_s_{pct}pct"] = cpu_seconds(op.proc.pid) - op_cpu
                    marks[f"emulator_cpu_s_{pct}pct"] = emu.cpu() - emu_cpu
            return ready >= count

        try:
            wait_until(progress, args.timeout, f"{count} Ready keys", op)
        except TimeoutError:
            # Report how far it got: at large counts the emulator, not the operator, sets the pace.
            ready = emu.count_ready()
            return {
                "new_keys": count,
                "create_s": created,
                "timed_out_after_s": args.timeout,
                "ready_at_timeout": ready,
                "ready_per_s": ready / args.timeout,
                **marks,
                "operator_cpu_s": cpu_seconds(op.proc.pid) - op_cpu,
                "emulator_cpu_s": emu.cpu() - emu_cpu,
                "rss_mib_idle": idle_rss,
                "rss_mib": op.rss_mib(),
            }
        done = marks["ready_100pct_s"]
        return {
            "new_keys": count,
            "create_s": created,
            "all_ready_s": done,
            "ready_per_s": count / done,
            **marks,
            "operator_cpu_s": cpu_seconds(op.proc.pid) - op_cpu,
            "emulator_cpu_s": emu.cpu() - emu_cpu,
            "rss_mib_idle": idle_rss,
            "rss_mib": op.rss_mib(),
        }
    finally:
        op.stop()
        emu.stop()


def summary(row: dict[str, Any]) -> str:
    g, e = row["get_by_name"], row["encrypt"]
    return (
        f"{row['keys']:>7} KmsKeys: listening {row['listening_s']:.2f} s, readyz {row['readyz_s']:.2f} s, "
        f"synced {row['synced_s']:.2f} s (emulator CPU {row['emulator_cpu_s_to_sync']:.2f} s); "
        f"RSS {row['rss_mib']:.0f} MiB; get-by-name p50 {g['p50_ms']:.2f} ms; "
        f"encrypt p50 {e['p50_ms']:.2f} ms; replies while syncing {row['sync_replies']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Kubernetes-mode scale benchmark (emulated API server)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000], help="KmsKeys for the API")
    parser.add_argument("--operator-keys", type=int, nargs="*", default=[1000], help="new keys to reconcile")
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk time per latency measurement")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on each wait, in seconds")
    parser.add_argument("--server-cpus", default=None, help="taskset list for the API/operator, e.g. 0")
    parser.add_argument("--load-cpus", default=None, help="CPUs for this process (emulator) and wrk, e.g. 1")
    parser.add_argument("--real-shape", action="store_true",
                        help="objects with managedFields and kubectl/Kopf annotations (a real server's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.load_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.load_cpus.split(",")})
    root_key = base64.b64encode(secrets.token_bytes(32)).decode()
    api_rows: list[dict[str, Any]] = []
    operator_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubekms-kscale-") as tmp:
        workdir = Path(tmp)
        emu, have = Emulator(workdir, root_key), 0
        try:
            for size in sorted(args.sizes):
                rate = emu.populate(have, size, args.timeout, shaped=args.real_shape)
                have = size
                row = {"populate_per_s": rate, **measure_api(emu, size, args, workdir)}
                row["bench_process_rss_mib"] = rss_mib(os.getpid())
                api_rows.append(row)
                if not args.json:
                    print(summary(row))
        finally:
            emu.stop()
        for count in args.operator_keys:
            row = measure_operator(workdir, root_key, count, args)
            operator_rows.append(row)
            if not args.json:
                done = (
                    f"Ready in {row['all_ready_s']:.2f} s"
                    if "all_ready_s" in row
                    else f"{row['ready_at_timeout']} Ready at the {row['timed_out_after_s']:g} s timeout"
                )
                rate, rss = row["ready_per_s"], row["rss_mib"]
                print(f"operator: {count} new KmsKeys {done} ({rate:.0f}/s); RSS {rss:.0f} MiB")
    if args.json:
        run = {"connections": args.connections, "seconds": args.seconds, "real_shape": args.real_shape}
        print(json.dumps({**run, "api": api_rows, "operator": operator_rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
