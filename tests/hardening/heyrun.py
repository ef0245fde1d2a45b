"""Fixed-rate load with `hey` (a Go load generator): one process per operation of the mix.

`hey -q Q -c C` gives each of C workers a ticker of Q requests per second, so the offered rate is
fixed at Q*C and never exceeds it; workers are sized so one slow reply does not cost the worker
its next tick. Each run's summary (latency distribution, status codes, errors) is parsed here.
Security property: the bearer token is only shown as `<token>` in recorded commands.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Per-worker rate: 50/s is a 20 ms tick, so a reply may take up to 20 ms before the worker falls
# behind its schedule; more workers only add idle connections.
WORKER_QPS = 50.0
_PCT = re.compile(r"^\s*(\d+)% in ([\d.]+) secs")
_STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses")
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.*)$")


@dataclass(frozen=True)
class Operation:
    """One operation of the mix: its name, share of the rate, URL and JSON body file."""

    name: str
    share: float
    url: str
    body: Path


@dataclass
class HeyResult:
    """One hey run: replies by status, transport errors, latency percentiles (ms)."""

    operation: str
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    percentiles_ms: dict[int, float] = field(default_factory=dict)
    slowest_ms: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def failed(self) -> int:
        return self.requests - self.statuses.get(200, 0)


def parse(operation: str, output: str) -> HeyResult:
    """hey's text summary -> HeyResult; raises when the summary is missing (hey failed)."""
    result = HeyResult(operation)
    section = ""
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and not line.startswith(" "):
            section = stripped[:-1]
            continue
        if stripped.startswith("Slowest:"):
            result.slowest_ms = float(stripped.split()[1]) * 1e3
        elif section == "Latency distribution" and (m := _PCT.match(line)):
            result.percentiles_ms[int(m[1])] = float(m[2]) * 1e3
        elif section == "Status code distribution" and (m := _STATUS.match(line)):
            result.statuses[int(m[1])] = int(m[2])
        elif section == "Error distribution" and (m := _ERROR.match(line)):
            # Error texts embed the URL and counts; keep only the part after the last colon.
            reason = m[2].rsplit(":", 1)[-1].strip() or m[2]
            result.errors[reason] = result.errors.get(reason, 0) + int(m[1])
    if "Summary:" not in output:
        raise RuntimeError(f"hey printed no summary for {operation}:\n{output[-2000:]}")
    return result


def taskset(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def command(op: Operation, token: str, seconds: float, rate: float | None, connections: int) -> list[str]:
    """hey for `seconds` at `rate` req/s (None: closed loop on `connections` workers)."""
    if rate is None:
        workers, per_worker = connections, []
    else:
        workers = max(1, math.ceil(rate / WORKER_QPS))
        per_worker = ["-q", f"{rate / workers:.3f}"]
    return [
        "hey", "-z", f"{seconds:g}s", "-c", str(workers), *per_worker, "-t", "10",
        "-m", "POST", "-T", "application/json", "-D", str(op.body),
        "-H", f"Authorization: Bearer {token}", "-disable-compression", op.url,
    ]  # fmt: skip


def shown(cmd: list[str], token: str) -> str:
    return shlex.join(cmd).replace(token, "<token>")


def run_all(
    ops: list[Operation], token: str, seconds: float, rates: dict[str, float] | None,
    connections: dict[str, int], cpus: str | None,
) -> dict[str, HeyResult]:  # fmt: skip
    """One hey per operation, all at once, for `seconds`; their parsed summaries by operation."""
    procs = {}
    for op in ops:
        cmd = command(op, token, seconds, rates[op.name] if rates else None, connections.get(op.name, 1))
        procs[op.name] = subprocess.Popen(
            [*taskset(cpus), *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    out = {}
    for name, proc in procs.items():
        text, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"hey for {name} exited {proc.returncode}:\n{text[-2000:]}")
        out[name] = parse(name, text)
    return out
