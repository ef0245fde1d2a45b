"""Soak: a mixed load at a fixed rate of 70 % of measured capacity against one `kubekms-api`.

1. Start the server pinned to one CPU (load generators and this driver on the other) and create
   an AES, an HMAC and a P-256 key.
2. Capacity, as the bench measures it: closed loop, 32 wrk connections split over the mix
   (encrypt 50 %, decrypt 30 %, generate-mac 10 %, sign 10 %), `--probe-seconds`.
3. Soak at `--load` of that rate for `--seconds`, in back-to-back slices of `--slice-seconds`
   (60: one per minute): per slice, one paced wrk (bench/lua/paced.lua; `--generator hey` for
   `hey -q`) per operation at its share of the fixed rate, then a scrape of the server's
   Prometheus histogram. Server RSS every 5 s, per-CPU busy time per slice, from /proc.
4. Verdict (rules in `soakverdict`): zero errors (client and server), every full minute's p99
   within 2x the median minute's (server and client), RSS growth < 5 % from the end of minute 1,
   and the offered rate actually achieved.

    python tests/hardening/soak.py --seconds 600 [--record bench/RESULTS.md]

Security property: a throwaway data dir with the fixed test root key; the token is never printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "api"), str(ROOT / "core"), str(ROOT / "bench")]

import loadgen  # noqa: E402  (bench/loadgen.py: wrk runs, as `make bench` measures)
import machine  # noqa: E402  (bench/machine.py: what the run ran on)

from fixtures.api import OPERATOR, P  # noqa: E402
from hardening import heyrun, pacedload, promhist, soakreport, soakverdict  # noqa: E402
from hardening.heyrun import Operation  # noqa: E402
from hardening.soakserver import RssSampler, SoakServer, cpu_busy, cpu_ticks  # noqa: E402

MIX = {"encrypt": 0.5, "decrypt": 0.3, "generate-mac": 0.1, "sign": 0.1}
PROBE_CONNECTIONS = {"encrypt": 16, "decrypt": 10, "generate-mac": 3, "sign": 3}  # 32, as the bench


def _cpus() -> tuple[str | None, str | None]:
    """(server CPUs, client CPUs): disjoint when the machine has two or more CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[-1]), ",".join(str(c) for c in cpus[:-1])


def _operations(server: SoakServer, tmp: Path) -> list[Operation]:
    def create(name: str, **fields: str) -> str:
        body = server.call("POST", "/api/v1/kms/keys", {"projectId": P, "name": name, **fields})
        return str(body["key"]["id"])

    aes = create("soak-aes")
    mac = create("soak-mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256")
    ec = create("soak-ec", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    data = base64.b64encode(os.urandom(64)).decode()
    k = f"{server.url}/api/v1/kms/keys"
    ct = server.call("POST", f"/api/v1/kms/keys/{aes}/encrypt", {"plaintext": data}, token=OPERATOR)
    bodies = {
        "encrypt": (f"{k}/{aes}/encrypt", {"plaintext": data}),
        "decrypt": (f"{k}/{aes}/decrypt", {"ciphertext": ct["ciphertext"]}),
        "generate-mac": (f"{k}/{mac}/generate-mac", {"data": data}),
        "sign": (f"{k}/{ec}/sign", {"signingAlgorithm": "ECDSA_SHA_256", "data": data}),
    }
    ops = []
    for name, (url, body) in bodies.items():
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(body))
        ops.append(Operation(name, MIX[name], url, path))
    return ops


def capacity(server: SoakServer, ops: list[Operation], seconds: float, cpus: str | None) -> dict[str, Any]:
    """Closed-loop throughput of the mix on 32 wrk connections, and the server's CPU use meanwhile."""
    cpu0, ticks, t0 = server.cpu_seconds(), cpu_ticks(), time.monotonic()
    started = {
        op.name: loadgen.start(op.url, connections=PROBE_CONNECTIONS[op.name], seconds=seconds,
                               token=OPERATOR, body=op.body.read_bytes(), cpus=cpus)
        for op in ops
    }  # fmt: skip
    runs = {n: loadgen.finish(s, PROBE_CONNECTIONS[n], seconds) for n, s in started.items()}
    busy = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    return {
        "rps": sum(r.rps for r in runs.values()),
        "by_operation": {n: round(r.rps) for n, r in runs.items()},
        "failed": sum(r.failed for r in runs.values()),
        "server_cpu": busy,
        "cpu_busy": cpu_busy(ticks, cpu_ticks()),
        "command": next(iter(runs.values())).command.replace(OPERATOR, "<token>"),
    }


GENERATORS: dict[str, Any] = {"wrk": pacedload, "hey": heyrun}


Row = dict[str, Any]


def _slice(server: SoakServer, ops: list[Operation], before: promhist.Scrape, seconds: float,
           rates: dict[str, float], cpus: str | None, gen: Any) -> tuple[Row, promhist.Scrape]:  # fmt: skip
    cpu0, ticks, t0 = server.cpu_seconds(), cpu_ticks(), time.monotonic()
    hey = gen.run_all(ops, OPERATOR, seconds, rates, {}, cpus)
    elapsed = time.monotonic() - t0
    after = promhist.fetch(server.metrics_url)
    delta = after.minus(before)
    merged = delta.merged()
    client_p99 = {n: r.percentiles_ms.get(99, math.nan) for n, r in hey.items()}
    row = {
        "seconds": round(elapsed, 2),
        "client_requests": sum(r.requests for r in hey.values()),
        "client_errors": sum(r.failed for r in hey.values()),
        "client_error_detail": {n: {**{str(s): c for s, c in r.statuses.items() if s != 200}, **r.errors}
                                for n, r in hey.items() if r.failed},
        "server_requests": delta.total(),
        "server_errors": delta.errors(),
        "server_p50_ms": promhist.quantile(0.5, merged) * 1e3,
        "server_p99_ms": promhist.quantile(0.99, merged) * 1e3,
        "server_p99_ms_by_op": {op: promhist.quantile(0.99, b) * 1e3 for op, b in delta.buckets.items()
                                if b and max(b.values()) > 0},
        "client_p99_ms_by_op": client_p99,
        # The mix's p99 is at most the worst operation's p99 (each op has <= 1 % above its own).
        "client_p99_ms": max(client_p99.values()),
        "late": sum(getattr(r, "late", 0) for r in hey.values()),
        "max_late_ms": max(getattr(r, "max_late_ms", 0.0) for r in hey.values()),
        "server_cpu": (server.cpu_seconds() - cpu0) / elapsed,
        "cpu_busy": cpu_busy(ticks, cpu_ticks()),
        "rss_kib": server.rss_kib(),
    }  # fmt: skip
    row["client_rps"] = row["client_requests"] / elapsed
    return row, after


def soak(args: argparse.Namespace) -> dict[str, Any]:
    server_cpus, client_cpus = _cpus()
    gen = GENERATORS[args.generator]
    described = machine.describe(ROOT)  # before the load and the pinning below
    affinity = os.sched_getaffinity(0)
    if client_cpus:
        os.sched_setaffinity(0, {int(c) for c in client_cpus.split(",")})
    try:
        return _soak(args, gen, server_cpus, client_cpus) | {"machine": described}
    finally:
        os.sched_setaffinity(0, affinity)


def _soak(args: argparse.Namespace, gen: Any, server_cpus: str | None, client_cpus: str | None) -> Row:
    with tempfile.TemporaryDirectory(prefix="kubekms-soak-") as tmp:
        server = SoakServer(Path(tmp), server_cpus)
        try:
            ops = _operations(server, Path(tmp))
            probe = capacity(server, ops, args.probe_seconds, client_cpus)
            target = probe["rps"] * args.load
            rates = {op.name: target * op.share for op in ops}
            print(f"capacity {probe['rps']:.0f} req/s (server CPU {probe['server_cpu']:.0%}, CPUs busy "
                  f"{soakreport.busy(probe)}); "
                  f"soaking at {target:.0f} req/s for {args.seconds:g} s", flush=True)  # fmt: skip
            rss = RssSampler(server)
            rss.start()
            before = promhist.fetch(server.metrics_url)
            rows: list[dict[str, Any]] = []
            remaining = args.seconds
            while remaining > 0.5:
                length = min(args.slice_seconds, remaining)
                row, before = _slice(server, ops, before, length, rates, client_cpus, gen)
                row.update(minute=len(rows) + 1, full=length >= args.slice_seconds)
                rows.append(row)
                remaining -= length
                print(soakreport.progress(row), flush=True)
            rss.stop()
            commands = [gen.shown(gen.command(op, OPERATOR, args.slice_seconds, rates[op.name], 0), OPERATOR)
                        for op in ops]  # fmt: skip
        finally:
            code = server.stop()
        faults = server.log_faults()
    result: dict[str, Any] = {
        "capacity": probe, "target_rps": target, "load": args.load, "seconds": args.seconds,
        "slice_seconds": args.slice_seconds, "probe_seconds": args.probe_seconds,
        "minutes": rows, "rss_samples": rss.samples,
        "server_exit": code, "log": faults, "server_command": heyrun.shown(server.cmd, OPERATOR),
        "generator": args.generator, "load_commands": commands,
        "cpus": {"server": server_cpus, "clients": client_cpus},
    }  # fmt: skip
    result["verdict"] = soakverdict.judge(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--load", type=float, default=0.7, help="fraction of measured capacity")
    parser.add_argument("--probe-seconds", type=float, default=10)
    parser.add_argument("--slice-seconds", type=float, default=60, help="one load run and scrape each")
    parser.add_argument(
        "--generator",
        choices=sorted(GENERATORS),
        default="wrk",
        help="wrk with bench/lua/paced.lua (even spacing) or hey -q (per-worker tickers)",
    )
    parser.add_argument("--record", type=Path, help="replace the Soak section of this Markdown file")
    parser.add_argument("--json", type=Path, help="write the full result here")
    args = parser.parse_args(argv)
    result = soak(args)
    shown_argv = argv if argv is not None else sys.argv[1:]
    print(soakreport.summary(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.record is not None:
        soakreport.record(args.record, soakreport.section(result, shown_argv))
    return 0 if result["verdict"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
