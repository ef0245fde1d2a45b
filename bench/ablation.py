"""What each part of the request path costs: server CPU time per request with that part off.

For one scenario, a full `kubekms-api`, one server per ablated part (`bench/ablated_api.py`:
logs, metrics, auth, crypto) and the bare aiohttp baseline run side by side, each pinned to
`--server-cpus`; wrk drives them in turn from `--load-cpus`, alternating, `--reps` times. The
figure is the server's CPU time (utime + stime from /proc) over a run divided by the requests
it served: unlike requests/s it barely moves when a neighbour steals the CPU, and unlike a
profiler it does not inflate small functions. A part's cost is the full server's figure minus
the ablated one's. Security property: tokens and bodies are the run's own random values, never
printed; the ablated servers skip checks and only ever listen on loopback for this run.

With `--peers`, the truly bare endpoint (`bare_server.py`) and OpenBao Transit as installed and
with a file audit device (`openbao.py`) are measured the same way, in the same rounds: the CPU a
request costs each peer, which bounds the req/s ratio any server could reach against it.

    python bench/ablation.py [--scenario encrypt-64B] [--parts logs metrics auth crypto] [--peers]
                             [--seconds 3] [--reps 2] [--server-cpus 0] [--load-cpus 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import loadgen
import openbao
from ablated_api import PARTS
from processes import BENCH_DIR, Identity, Server, cpu_seconds, start_api, start_bare, start_baseline
from scenarios import BY_NAME, prepare


def measure(
    server: Server, url: str, token: str, body: bytes, reply: int, args: argparse.Namespace
) -> dict[str, Any]:
    before = cpu_seconds(server.proc.pid)
    run = loadgen.run(
        url, connections=args.connections, seconds=args.seconds, token=token, body=body,
        reply_bytes=reply or None, cpus=args.load_cpus,
    )  # fmt: skip
    used = cpu_seconds(server.proc.pid) - before
    return {"rps": run.rps, "requests": run.requests, "cpu_us_per_request": used / max(run.requests, 1) * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", default="encrypt-64B", choices=sorted(BY_NAME))
    parser.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    parser.add_argument("--peers", action="store_true", help="also the bare endpoint and OpenBao Transit")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    scenario = BY_NAME[args.scenario]
    if "crypto" in args.parts and scenario.op != "encrypt":
        parser.error("the crypto ablation only replaces the encrypt path")
    identity = Identity.random()
    script = (str(BENCH_DIR / "ablated_api.py"),)
    variants = {"full": "", **{f"no-{p}": p for p in args.parts}}
    if len(args.parts) > 1:
        variants["none-of-them"] = "+".join(args.parts)
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="kubekms-ablation-") as tmp:
        work = Path(tmp)
        try:
            servers["baseline"] = start_baseline(work, cpus=args.server_cpus)
            for name, parts in variants.items():
                env = {"ROOT_ENCRYPTION_KEY": identity.root_key, "BENCH_ABLATE": parts}
                servers[name] = start_api(work, identity, cpus=args.server_cpus, name=name, extra_env=env,
                                          python_args=script)  # fmt: skip
            if args.peers:
                servers["bare"] = start_bare(work, cpus=args.server_cpus)
                for peer in ("openbao", "openbao_audit"):
                    servers[peer] = openbao.start(
                        work, identity.operator, cpus=args.server_cpus, audit=peer == "openbao_audit"
                    )
            # Every server gets its own key and probe; "crypto" answers random bytes, so no check.
            apis = [n for n in servers if n in variants]
            prepared = {n: prepare(servers[n], identity, scenario, {}) for n in apis}
            sample = prepared["full"]
            # (path, body, reply size the baselines mimic, token) per server
            requests = {n: (p.path, p.body, p.reply_bytes, identity.operator) for n, p in prepared.items()}
            requests["baseline"] = (sample.path, sample.body, sample.reply_bytes, "x")
            if args.peers:
                if scenario.usage == "sign-verify":  # the same primitive on the bare server's own key
                    own = prepare(servers["bare"], identity, scenario, {})
                    requests["bare"] = (own.path, own.body, own.reply_bytes, "x")
                else:
                    requests["bare"] = (sample.path, sample.body, sample.reply_bytes, "x")
                for peer in ("openbao", "openbao_audit"):
                    bao = servers[peer]
                    assert isinstance(bao, openbao.Bao)
                    transit = openbao.prepare(bao, args.scenario, {})
                    requests[peer] = (transit.path, transit.body, 0, bao.token)
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for _ in range(args.reps):
                for name, server in servers.items():
                    path, body, reply, token = requests[name]
                    rows[name].append(measure(server, server.url + path, token, body, reply, args))
        finally:
            for server in servers.values():
                server.stop()
    best = {name: min(runs, key=lambda r: r["cpu_us_per_request"]) for name, runs in rows.items()}
    full = best["full"]["cpu_us_per_request"]
    result = {
        "scenario": args.scenario,
        "connections": args.connections,
        "seconds": args.seconds,
        "reps": args.reps,
        "servers": {
            name: {**row, "saved_us": full - row["cpu_us_per_request"] if name in variants else None}
            for name, row in best.items()
        },
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.scenario}, {args.connections} connections, best of {args.reps} x {args.seconds:g} s")
    print(f"{'server':<16}{'CPU us/req':>12}{'saved us':>10}{'req/s':>10}")
    for name, row in result["servers"].items():
        saved = "" if row["saved_us"] is None else f"{row['saved_us']:.1f}"
        print(f"{name:<16}{row['cpu_us_per_request']:>12.1f}{saved:>10}{row['rps']:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
