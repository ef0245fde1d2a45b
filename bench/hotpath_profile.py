"""Profile of the API's hot path: which functions run on every request, how often, and for how long.

A `kubekms-api` worker runs under cProfile (deterministic, so call counts are exact) while wrk
drives one scenario; when it stops, every function called at least once per request is listed with
its calls per request and its own and cumulative microseconds per request. Work that repeats per
request with the same inputs (lookups, parsing, object construction) is what can be cached or
precomputed. cProfile inflates the cost of many small calls, so use the figures to rank, and the
load benchmark for absolute speed. Security property: profiles hold code locations, never data.

    python bench/hotpath_profile.py [--scenario encrypt-64B] [--transit] [--seconds 5] [--top 25] [--json]

`--transit` profiles the Vault Transit request for the same key and input (encrypt scenarios).
"""

from __future__ import annotations

import argparse
import json
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

import loadgen
from processes import Identity, call, start_api
from scenarios import BY_NAME, prepare
from transit_routes import encrypt as transit_encrypt

REPO = Path(__file__).resolve().parent.parent


def _where(file: str, line: int, func: str) -> str:
    for marker in ("/site-packages/", str(REPO) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{func} ({file}:{line})" if line else func


def per_request(stats_path: Path, requests: int, top: int, min_calls: float = 0.9) -> list[dict[str, Any]]:
    """Functions called at least `min_calls` times per request, by own time per request."""
    raw: dict[Any, Any] = pstats.Stats(str(stats_path)).stats  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        if ncalls >= min_calls * requests:
            rows.append(
                {
                    "function": _where(file, line, func),
                    "calls_per_request": round(ncalls / requests, 2),
                    "own_us_per_request": round(tottime / requests * 1e6, 2),
                    "cum_us_per_request": round(cumtime / requests * 1e6, 2),
                }
            )
    rows.sort(key=lambda r: r["own_us_per_request"], reverse=True)
    return rows[:top]


def profile(
    scenario_name: str,
    seconds: float,
    connections: int,
    top: int,
    cpus: tuple[str | None, str | None],
    transit: bool = False,
) -> dict[str, Any]:
    identity = Identity.random()
    with tempfile.TemporaryDirectory(prefix="kubekms-profile-") as tmp:
        workdir = Path(tmp)
        stats_path = workdir / "api.prof"
        api = start_api(
            workdir, identity, cpus=cpus[0], python_args=("-m", "cProfile", "-o", str(stats_path))
        )
        try:
            prepared = prepare(api, identity, BY_NAME[scenario_name], {})
            probes = 3  # key creation, the probe and (for decrypt/verify) the request that made the body
            path, body, namespace = prepared.path, prepared.body, None
            if transit:
                vault = transit_encrypt(api, identity.operator, prepared)
                path, body, namespace, probes = vault.path, vault.body, vault.namespace, probes + 1
            result = loadgen.run(
                api.url + path,
                connections=connections,
                seconds=seconds,
                token=identity.operator,
                body=body,
                cpus=cpus[1],
                namespace=namespace,
            )
            status, _, _ = call(api, "GET", "/healthz", identity.operator)
        finally:
            api.stop()
        if not stats_path.exists():
            raise RuntimeError(f"the profiled server wrote no profile:\n{api.logs()[-3000:]}")
        requests = result.requests + probes
        return {
            "scenario": scenario_name + (" (Transit)" if transit else ""),
            "connections": connections,
            "seconds": seconds,
            "requests": requests,
            "rps_under_profiler": result.rps,
            "failed": result.failed,
            "healthz_status": status,
            "server_command": api.command.replace(str(workdir), "$TMP"),
            "per_request": per_request(stats_path, requests, top),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cProfile the API's per-request work under wrk load")
    parser.add_argument("--scenario", default="encrypt-64B", choices=sorted(BY_NAME))
    parser.add_argument("--transit", action="store_true", help="the Vault Transit route (encrypt scenarios)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--server-cpus", default=None)
    parser.add_argument("--load-cpus", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = profile(
        args.scenario,
        args.seconds,
        args.connections,
        args.top,
        (args.server_cpus, args.load_cpus),
        args.transit,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"{report['scenario']}: {report['requests']} requests, {report['rps_under_profiler']:.0f} req/s "
        "under the profiler\n"
    )
    print(f"{'calls/req':>9} {'own us/req':>10} {'cum us/req':>10}  function")
    for row in report["per_request"]:
        print(
            f"{row['calls_per_request']:>9} {row['own_us_per_request']:>10} {row['cum_us_per_request']:>10}  "
            f"{row['function']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
