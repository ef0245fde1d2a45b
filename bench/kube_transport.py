"""Kubernetes transport: KubeKMS's own async REST client against kubernetes_asyncio, measured.

Compares, in fresh client processes against the emulated API server (tests/kube, in its own
process so its CPU is not counted):
- `ours`: `KubeClient` + `KubeConfig(server=...)` (kms_kube.client, or kms_api.kube.client before
  the move; when neither imports from the work tree, the committed HEAD copy is used);
- `kae`: kubernetes_asyncio `ApiClient` + `CustomObjectsApi` / `CoreV1Api`, default path (custom
  objects come back as dicts, Secrets as `V1Secret` models);
- `kae-raw`: the same calls with `_preload_content=False` (the raw aiohttp response, read and
  decoded with orjson here; status checked by hand, as kubernetes_asyncio then does not);
- `kae-raw-noenv`: `kae-raw` with the session's private `_trust_env` switched off (no per-request
  netrc/proxy-environment lookups in a thread).

Figures: import time of the client module (fresh interpreter, median of --import-runs), RSS
increase over that import, CPU and wall time per GET of one KmsKey and of one Secret (N
sequential requests, median of --runs runs, variants interleaved), a paginated list (limit 500)
of 1,000 KmsKeys and of 1,000 Secrets, and watch decoding of large (~0.85 MiB) Secret events.
`--checks` also records what kubernetes_asyncio does for JSON-patch with `test` on a custom
object, merge-patch without a forced content type, and BOOKMARK events.

    .venv/bin/python bench/kube_transport.py [--n 2000] [--runs 3] [--json]
        [--client-python PATH]   # interpreter with kubernetes_asyncio (default: this one)
        [--ours tree|head]        # the work tree's client (default) or the committed one

Needs `pip install kubernetes-asyncio` in the client interpreter; the emulator runs with this
interpreter (kmock, the tests/kube package). Security property: the bearer token is the
emulator's fixed test token; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC_PATHS = [ROOT / "core", ROOT / "api", ROOT / "operator", ROOT / "tests"]
TOKEN = "emulator-admin-token"
NS, SYSTEM_NS = "team-a", "kubekms-system"
GROUP, VERSION, PLURAL = "kubekms.io", "v1alpha1", "kmskeys"
LIST_SIZE = 1000
BIG_SECRETS = 4  # watch: Secrets of ~0.85 MiB (many versions; the emulator takes bodies <= 1 MiB)
VARIANTS = ("ours", "kae", "kae-raw", "kae-raw-noenv")


# -- helpers run in every process -------------------------------------------------------------


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _import_ours() -> tuple[Any, Any, str]:
    if os.environ.get("KUBE_TRANSPORT_OURS") == "head":
        from kms_api.kube.client import KubeClient as HeadClient
        from kms_api.kube.config import KubeConfig as HeadConfig

        return HeadClient, HeadConfig, "kms_api.kube.client (HEAD)"
    try:
        from kms_kube.client import KubeClient
        from kms_kube.config import KubeConfig

        return KubeClient, KubeConfig, "kms_kube.client"
    except ImportError:
        pass
    from kms_api.kube.client import KubeClient  # type: ignore[no-redef]
    from kms_api.kube.config import KubeConfig  # type: ignore[no-redef]

    return KubeClient, KubeConfig, "kms_api.kube.client"


def _kmskey(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KmsKey",
        "metadata": {
            "name": f"key-{i:04d}",
            "labels": {"app": "bench"},
            "annotations": {"kubekms.io/description": "benchmark key " * 3},
        },
        "spec": {
            "keyUsage": "encrypt-decrypt",
            "algorithm": "aes-256-gcm",
            "description": "a KmsKey-like object for the transport benchmark",
        },
    }


def _secret(i: int, versions: int = 3, blob: int = 400) -> dict[str, Any]:
    import base64

    data = {f"v{v}": base64.b64encode(os.urandom(blob)).decode() for v in range(1, versions + 1)}
    data["owner"] = base64.b64encode(os.urandom(180)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": f"kmskey-{i:04d}",
            "labels": {"app.kubernetes.io/managed-by": "kubekms"},
            "annotations": {"kubekms.io/key": f"{NS}/key-{i:04d}", "kubekms.io/version": "3"},
        },
        "data": data,
    }


# -- the emulator process -----------------------------------------------------------------------


def serve() -> None:
    """Run the emulator, seed it, print `PORT <n>` and serve until stdin closes."""
    from kube.cluster import KMSKEYS, SECRETS, Cluster

    with Cluster(namespaces=("default", NS, SYSTEM_NS), bookmark_interval=1.0) as cluster:
        cluster.apply_file(ROOT / "crds" / "kmskeys.kubekms.io.yaml")
        cluster.wait_for(lambda: cluster.list(KMSKEYS, NS) is not None, timeout=10)
        for i in range(LIST_SIZE):
            cluster.create(KMSKEYS, _kmskey(i), namespace=NS)
            cluster.create(SECRETS, _secret(i), namespace=SYSTEM_NS)
        print(f"PORT {cluster.port}", flush=True)
        sys.stdin.read()


# -- probes run in the client interpreter ------------------------------------------------------


def import_probe(which: str) -> None:
    before = _rss_kib()
    t0 = time.perf_counter()
    if which == "ours":
        module = _import_ours()[2]
    else:
        import kubernetes_asyncio.client  # noqa: F401

        module = "kubernetes_asyncio.client"
    ms = (time.perf_counter() - t0) * 1000
    print(json.dumps({"ms": ms, "rss_kib": _rss_kib() - before, "module": module}))


class Variant:
    """The same five operations on each transport; every call returns decoded JSON."""

    def __init__(self, which: str, url: str) -> None:
        self.which = which
        self.url = url

    async def open(self) -> None:
        if self.which == "ours":
            client_cls, config_cls, _ = _import_ours()
            self.ours = client_cls(config_cls(server=self.url, token=TOKEN))
        else:
            from kubernetes_asyncio import client

            cfg = client.Configuration(host=self.url)
            cfg.api_key = {"BearerToken": TOKEN}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
            self.api = client.ApiClient(cfg)
            if self.which == "kae-raw-noenv":
                # kubernetes_asyncio builds its session with trust_env=True and no option to turn
                # it off: aiohttp then looks up ~/.netrc and the proxy environment in a thread
                # for every request. A private attribute is the only switch.
                self.api.rest_client.pool_manager._trust_env = False
            self.custom = client.CustomObjectsApi(self.api)
            self.core = client.CoreV1Api(self.api)

    async def close(self) -> None:
        if self.which == "ours":
            await self.ours.close()
        else:
            await self.api.close()

    async def _raw(self, call: Any) -> Any:
        import orjson

        resp = await call
        async with resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"HTTP {resp.status}")
        return orjson.loads(raw)

    async def get_key(self, name: str) -> Any:
        if self.which == "ours":
            return await self.ours.get(f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/{name}")
        call = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, name, _preload_content=self.which == "kae"
        )
        return await (call if self.which == "kae" else self._raw(call))

    async def get_secret(self, name: str) -> Any:
        if self.which == "ours":
            return await self.ours.get(f"/api/v1/namespaces/{SYSTEM_NS}/secrets/{name}")
        if self.which == "kae":
            return await self.core.read_namespaced_secret(name, SYSTEM_NS)  # a V1Secret model
        return await self._raw(self.core.read_namespaced_secret(name, SYSTEM_NS, _preload_content=False))

    async def list_keys(self) -> int:
        if self.which == "ours":
            items, _ = await self.ours.list_all(f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}")
            return len(items)
        return await self._kae_list(
            lambda **kw: self.custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, **kw)
        )

    async def list_secrets(self) -> int:
        if self.which == "ours":
            items, _ = await self.ours.list_all(f"/api/v1/namespaces/{SYSTEM_NS}/secrets")
            return len(items)
        return await self._kae_list(lambda **kw: self.core.list_namespaced_secret(SYSTEM_NS, **kw))

    async def _kae_list(self, fn: Any) -> int:
        count, token = 0, None
        while True:
            kw: dict[str, Any] = {"limit": 500}
            if token:
                kw["_continue"] = token
            if self.which == "kae":
                page = await fn(**kw)
                if isinstance(page, dict):
                    items, token = page.get("items") or [], (page.get("metadata") or {}).get("continue")
                else:  # V1SecretList
                    items, token = page.items or [], page.metadata._continue
            else:
                page = await self._raw(fn(_preload_content=False, **kw))
                items, token = page.get("items") or [], (page.get("metadata") or {}).get("continue")
            count += len(items)
            if not token:
                return count


async def _timed(n: int, op: Any) -> dict[str, float]:
    for i in range(min(50, n)):  # warm-up: connection, first-call caches
        await op(i)
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        await op(i)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6, "rps": n / wall}


async def load(which: str, url: str, n: int, lists: int) -> dict[str, Any]:
    v = Variant(which, url)
    await v.open()
    try:
        out = {
            "get_kmskey": await _timed(n, lambda i: v.get_key(f"key-{i % 100:04d}")),
            "get_secret": await _timed(n, lambda i: v.get_secret(f"kmskey-{i % 100:04d}")),
        }
        assert await v.list_keys() == LIST_SIZE and await v.list_secrets() == LIST_SIZE
        for name, op in (("list_kmskeys", v.list_keys), ("list_secrets", v.list_secrets)):
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(lists):
                await op()
            out[name] = {
                "cpu_ms": (time.process_time() - c0) / lists * 1e3,
                "wall_ms": (time.perf_counter() - w0) / lists * 1e3,
            }
        return out
    finally:
        await v.close()


def load_probe(which: str, url: str, n: int, lists: int) -> None:
    print(json.dumps(asyncio.run(load(which, url, n, lists))))


async def checks(url: str) -> dict[str, Any]:
    """What kubernetes_asyncio does for the calls KubeKMS needs beyond get/list, and the CPU cost
    of decoding large watch events on each transport."""
    import orjson
    from kubernetes_asyncio import client, watch

    cfg = client.Configuration(host=url)
    cfg.api_key, cfg.api_key_prefix = {"BearerToken": TOKEN}, {"BearerToken": "Bearer"}
    out: dict[str, Any] = {}
    async with client.ApiClient(cfg) as api:
        _lowercase_bool_params(api)
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        args = (GROUP, VERSION, NS, PLURAL, "key-0000")
        ok = [
            {"op": "test", "path": "/spec/algorithm", "value": "aes-256-gcm"},
            {"op": "replace", "path": "/spec/description", "value": "patched"},
        ]
        bad = [
            {"op": "test", "path": "/spec/algorithm", "value": "rsa-4096"},
            {"op": "replace", "path": "/spec/description", "value": "never"},
        ]
        try:
            obj = await custom.patch_namespaced_custom_object(*args, ok)
            out["json_patch_test_ok"] = obj["spec"]["description"] == "patched"
        except client.ApiException as exc:
            out["json_patch_test_ok"] = f"ApiException {exc.status}"
        try:
            await custom.patch_namespaced_custom_object(*args, bad)
            out["json_patch_test_fail"] = "applied (test ignored)"
        except client.ApiException as exc:
            out["json_patch_test_fail"] = f"ApiException {exc.status}"
        merge = {"spec": {"description": "merged"}}
        try:
            await custom.patch_namespaced_custom_object(*args, merge)
            out["merge_patch_default_ctype"] = "accepted"
        except client.ApiException as exc:
            out["merge_patch_default_ctype"] = f"ApiException {exc.status} (sent as json-patch+json)"
        obj = await custom.patch_namespaced_custom_object(
            *args, merge, _content_type="application/merge-patch+json"
        )
        out["merge_patch_forced_ctype"] = obj["spec"]["description"] == "merged"

        # Large watch events: BIG_SECRETS Secrets of ~0.85 MiB, watched from just before they exist.
        rv = (await core.list_namespaced_secret(SYSTEM_NS, limit=1)).metadata.resource_version
        for i in range(BIG_SECRETS):
            await core.create_namespaced_secret(SYSTEM_NS, _secret(5000 + i, versions=20, blob=32 * 1024))
        kinds: list[str] = []
        c0 = time.process_time()
        async with watch.Watch() as w:
            async for event in w.stream(
                core.list_namespaced_secret,
                SYSTEM_NS,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=3,
            ):
                kinds.append(event["type"])
                if event["type"] == "ADDED" and out.get("watch_object_type") is None:
                    out["watch_object_type"] = type(event["object"]).__name__
                    out["watch_event_bytes"] = len(orjson.dumps(event["raw_object"]))
        kae_cpu = time.process_time() - c0
        out["kae_watch_events"] = {k: kinds.count(k) for k in sorted(set(kinds))}
        out["kae_watch_cpu_ms_per_big_event"] = kae_cpu / BIG_SECRETS * 1e3

    client_cls, config_cls, _ = _import_ours()
    ours = client_cls(config_cls(server=url, token=TOKEN))
    kinds = []
    c0 = time.process_time()
    async for event in ours.watch(
        f"/api/v1/namespaces/{SYSTEM_NS}/secrets",
        {"resourceVersion": rv, "allowWatchBookmarks": "true"},
        timeout_seconds=3,
    ):
        kinds.append(event["type"])
    out["ours_watch_cpu_ms_per_big_event"] = (time.process_time() - c0) / BIG_SECRETS * 1e3
    out["ours_watch_events"] = {k: kinds.count(k) for k in sorted(set(kinds))}
    await ours.close()
    return out


def _lowercase_bool_params(api: Any) -> None:
    """kubernetes_asyncio sends Python bools as `watch=True`; kube-apiserver parses any value but
    0/f/false as true, the emulator only `true`/`1`. Lower-case them so the watch reaches it."""
    request = api.rest_client.request

    async def wrapped(method: str, url: str, query_params: Any = None, **kw: Any) -> Any:
        if query_params:
            query_params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in query_params]
        return await request(method, url, query_params=query_params, **kw)

    api.rest_client.request = wrapped


def checks_probe(url: str) -> None:
    print(json.dumps(asyncio.run(checks(url))))


# -- the driver ---------------------------------------------------------------------------------


def _env(extra: list[Path]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [*extra, *SRC_PATHS])
    return env


def _run(python: str, env: dict[str, str], *args: str, timeout: float = 600) -> dict[str, Any]:
    proc = subprocess.run([python, __file__, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _ours_overlay(python: str, tmp: Path, force_head: bool) -> list[Path]:
    """Nothing when the work tree's client imports (and --ours head is not given); else HEAD's
    api/kms_api/kube/{client,config}.py (the pre-kms_kube client) in a temporary overlay."""
    probe = [python, __file__, "--probe", "import", "--which", "ours"]
    if not force_head and subprocess.run(probe, env=_env([]), capture_output=True).returncode == 0:
        return []
    pkg = tmp / "kms_api" / "kube"
    pkg.mkdir(parents=True)
    for init in (tmp / "kms_api" / "__init__.py", pkg / "__init__.py"):
        init.write_text("")
    for name in ("client.py", "config.py"):
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"HEAD:api/kms_api/kube/{name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (pkg / name).write_text(text)
    print("note: using HEAD's api/kms_api/kube/client.py as `ours`", file=sys.stderr)
    return [tmp]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="sequential GETs per kind and run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lists", type=int, default=3, help="1,000-object lists per kind and run")
    ap.add_argument("--import-runs", type=int, default=5)
    ap.add_argument("--client-python", default=sys.executable)
    ap.add_argument(
        "--ours",
        choices=["tree", "head"],
        default="tree",
        help="tree: the work tree's kms_kube.client (else kms_api.kube.client); "
        "head: the committed api/kms_api/kube/client.py",
    )
    ap.add_argument("--no-checks", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--probe", choices=["import", "load", "checks"], help=argparse.SUPPRESS)
    ap.add_argument("--which", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve()
    if args.probe == "import":
        return import_probe(args.which)
    if args.probe == "load":
        return load_probe(args.which, args.url, args.n, args.lists)
    if args.probe == "checks":
        return checks_probe(args.url)

    has_kae = [args.client_python, "-c", "import kubernetes_asyncio"]
    if subprocess.run(has_kae, capture_output=True).returncode:
        raise SystemExit(
            f"kubernetes_asyncio is not installed for {args.client_python}: run "
            f"`{args.client_python} -m pip install kubernetes-asyncio` (or pass "
            "--client-python with an interpreter that has it)"
        )
    with tempfile.TemporaryDirectory(prefix="kube-transport-") as tmpdir:
        env = _env(_ours_overlay(args.client_python, Path(tmpdir), args.ours == "head"))
        if args.ours == "head":
            env["KUBE_TRANSPORT_OURS"] = "head"
        result: dict[str, Any] = {"n": args.n, "runs": args.runs, "client_python": args.client_python}
        samples: dict[str, list[dict[str, Any]]] = {w: [] for w in ("ours", "kae")}
        for i in range(args.import_runs):
            for which in ("ours", "kae") if i % 2 == 0 else ("kae", "ours"):
                samples[which].append(_run(args.client_python, env, "--probe", "import", "--which", which))
        result["import"] = {
            w: {
                "module": s[0]["module"],
                "ms": statistics.median(x["ms"] for x in s),
                "rss_mib": statistics.median(x["rss_kib"] for x in s) / 1024,
            }
            for w, s in samples.items()
        }

        server = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            env=_env([]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("PORT "):
                raise SystemExit("the emulator did not start")
            url = f"http://127.0.0.1:{int(line.split()[1])}"
            runs: dict[str, list[dict[str, Any]]] = {w: [] for w in VARIANTS}
            for r in range(args.runs):
                order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
                for which in order:
                    runs[which].append(
                        _run(
                            args.client_python,
                            env,
                            "--probe",
                            "load",
                            "--which",
                            which,
                            "--url",
                            url,
                            "--n",
                            str(args.n),
                            "--lists",
                            str(args.lists),
                        )
                    )
            result["load"] = {
                w: {op: {k: statistics.median(run[op][k] for run in rs) for k in rs[0][op]} for op in rs[0]}
                for w, rs in runs.items()
            }
            if not args.no_checks:
                result["checks"] = _run(args.client_python, env, "--probe", "checks", "--url", url)
        finally:
            if server.stdin:
                server.stdin.close()
            server.wait(timeout=30)

    if args.json:
        print(json.dumps(result, indent=2))
        return
    imp, ld = result["import"], result["load"]
    print(f"N={args.n} sequential GETs, median of {args.runs} runs; lists of {LIST_SIZE} (limit 500)")
    print(
        f"{'variant':13} {'import ms':>9} {'RSS MiB':>8} | {'key CPU µs':>10} {'key req/s':>9} | "
        f"{'secret CPU µs':>13} {'secret req/s':>12} | {'list keys CPU ms':>16} "
        f"{'list secrets CPU ms':>19}"
    )
    for w in VARIANTS:
        i = imp["ours" if w == "ours" else "kae"]  # the kae variants share one import
        row = ld[w]
        print(
            f"{w:13} {i['ms']:9.1f} {i['rss_mib']:8.1f} | {row['get_kmskey']['cpu_us']:10.0f} "
            f"{row['get_kmskey']['rps']:9.0f} | {row['get_secret']['cpu_us']:13.0f} "
            f"{row['get_secret']['rps']:12.0f} | {row['list_kmskeys']['cpu_ms']:16.1f} "
            f"{row['list_secrets']['cpu_ms']:19.1f}"
        )
    if "checks" in result:
        print("checks:", json.dumps(result["checks"]))


if __name__ == "__main__":
    main()
