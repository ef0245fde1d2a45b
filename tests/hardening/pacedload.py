"""Fixed-rate load with wrk and bench/lua/paced.lua: one wrk process per operation of the mix.

The script spaces requests evenly on one schedule per process and counts those it could not
send on time, so the offered rate is fixed and any shortfall is visible. (hey's `-q` gives each
worker its own ticker; the tickers start together and stay in phase, so the load arrives as
one burst per tick, which inflates client p99 by the time the server needs to drain the burst.)
Security property: the bearer token reaches wrk through its environment, never its command line.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hardening.heyrun import Operation, taskset

LUA = Path(__file__).resolve().parents[2] / "bench" / "lua" / "paced.lua"
MARKER = "PACED_RESULT "
# Connections bound the requests in flight: enough for every slot of 25 ms to be outstanding at
# once, so a reply slower than that (not a normal one) is what makes a request late.
IN_FLIGHT_SECONDS = 0.025


@dataclass
class PacedResult:
    """One paced wrk run: requests, errors by kind, late requests, latency percentiles (ms)."""

    operation: str
    requests: int
    errors: dict[str, int] = field(default_factory=dict)
    late: int = 0
    max_late_ms: float = 0.0
    percentiles_ms: dict[int, float] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def statuses(self) -> dict[int, int]:
        return {}


def parse(operation: str, output: str) -> PacedResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result for {operation}:\n{output[-2000:]}")
    raw = json.loads(line[len(MARKER) :])
    lat = raw["latency_us"]
    return PacedResult(
        operation,
        requests=raw["requests"],
        errors={k: int(v) for k, v in raw["errors"].items() if v},
        late=raw["late"],
        max_late_ms=raw["max_late_ms"],
        percentiles_ms={
            50: lat["p50"] / 1e3,
            90: lat["p90"] / 1e3,
            99: lat["p99"] / 1e3,
            999: lat["p99.9"] / 1e3,
            100: lat["max"] / 1e3,
        },
    )


def connections(rate: float) -> int:
    return max(4, math.ceil(rate * IN_FLIGHT_SECONDS))


def command(op: Operation, token: str, seconds: float, rate: float | None, conns: int) -> list[str]:
    """The wrk command line (the token is passed in the environment; `token` is unused here)."""
    del token
    n = connections(rate) if rate is not None else conns
    return ["wrk", "-t1", f"-c{n}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(LUA), op.url]  # fmt: skip


def shown(cmd: list[str], token: str) -> str:
    del token
    return "PACED_TOKEN=<token> PACED_BODY_FILE=<op.json> PACED_RATE=<rate> " + shlex.join(cmd)


def run_all(
    ops: list[Operation], token: str, seconds: float, rates: dict[str, float] | None,
    conns: dict[str, int], cpus: str | None,
) -> dict[str, PacedResult]:  # fmt: skip
    """One paced wrk per operation, all at once, for `seconds`; parsed results by operation."""
    if rates is None:
        raise ValueError("paced load needs a rate per operation")
    procs = {}
    for op in ops:
        env = {**os.environ, "PACED_TOKEN": token, "PACED_BODY_FILE": str(op.body),
               "PACED_RATE": f"{rates[op.name]:.3f}"}  # fmt: skip
        cmd = [*taskset(cpus), *command(op, token, seconds, rates[op.name], 0)]
        procs[op.name] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    out = {}
    for name, proc in procs.items():
        text, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"wrk for {name} exited {proc.returncode}:\n{text[-2000:]}")
        out[name] = parse(name, text)
    return out
