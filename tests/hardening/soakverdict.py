"""The soak's pass/fail rules, each stated in words next to its outcome.

Only full minutes are judged for latency and rate (a partial last slice has too few requests to
say anything about p99). Security property: works on counts and timings only.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

P99_FACTOR = 2.0
RSS_GROWTH_PCT = 5.0
RATE_FLOOR = 0.95

RULES = {
    "errors": "zero non-2xx replies and transport errors (load generators, server counters, probe), "
    "no 500 or traceback in the server log, clean server exit",
    "server_p99": f"every full minute's server p99 <= {P99_FACTOR:g}x the median full minute's",
    "client_p99": f"every full minute's client p99 <= {P99_FACTOR:g}x the median full minute's",
    "rss": f"server RSS growth < {RSS_GROWTH_PCT:g} % from the end of minute 1 to the end",
    "rate": f"every full minute achieved >= {RATE_FLOOR:.0%} of the target rate",
}


def _stable(values: list[float]) -> tuple[bool | None, str]:
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) != len(values):
        return False, "a minute has no latency data"
    if not values:
        return None, "no full minute"
    median = statistics.median(values)
    worst = max(values)
    return (
        worst <= P99_FACTOR * median,
        f"median {median:.2f} ms, worst {worst:.2f} ms ({worst / median:.2f}x)",
    )


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """{rule: {"ok": True/False/None (not judged), "rule": text, "detail": text}, "passed": bool}."""
    rows = result["minutes"]
    full = [r for r in rows if r["full"]]
    client_errors = sum(r["client_errors"] for r in rows)
    server_errors = sum(r["server_errors"] for r in rows)
    log = result["log"]
    error_ok = (
        client_errors == 0 and server_errors == 0 and result["capacity"]["failed"] == 0
        and log["tracebacks"] == 0 and log["status_500"] == 0 and result["server_exit"] == 0
    )  # fmt: skip
    out: dict[str, Any] = {
        "errors": (error_ok, f"client {client_errors}, server {server_errors}, probe "
                   f"{result['capacity']['failed']}, log 500s {log['status_500']}, tracebacks "
                   f"{log['tracebacks']}, exit {result['server_exit']}"),
        "server_p99": _stable([r["server_p99_ms"] for r in full]),
        "client_p99": _stable([r["client_p99_ms"] for r in full]),
    }  # fmt: skip
    if len(rows) >= 2:
        base, end = rows[0]["rss_kib"], rows[-1]["rss_kib"]
        growth = 100.0 * (end - base) / base
        out["rss"] = (growth < RSS_GROWTH_PCT, f"{base / 1024:.1f} -> {end / 1024:.1f} MiB ({growth:+.2f} %)")
    else:
        out["rss"] = (None, "fewer than two minutes")
    if full:
        worst = min(r["client_rps"] for r in full)
        target = result["target_rps"]
        out["rate"] = (worst >= RATE_FLOOR * target, f"target {target:.0f} req/s, lowest minute {worst:.0f}")
    else:
        out["rate"] = (None, "no full minute")
    verdict: dict[str, Any] = {
        name: {"ok": ok, "rule": RULES[name], "detail": detail} for name, (ok, detail) in out.items()
    }
    verdict["passed"] = all(v["ok"] is not False for v in verdict.values())
    return verdict
