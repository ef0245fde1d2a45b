"""Running `wrk` with bench/lua/request.lua and reading the one-line JSON result its `done` hook prints.

A run in which any reply was not 2xx, or any socket error or timeout happened, is not a result:
`finish` (and `run`) raise `NotAResult` instead of returning its figures, because a 401, 429 or
5xx is answered by a different, usually cheaper, code path than the one being measured.

The load generator is pinned (taskset) to CPUs other than the server's when the machine has them,
so the two do not steal each other's core. Security property: the bearer token reaches wrk through
its environment, never its command line (which `ps` shows and RESULTS.md records).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua" / "request.lua"
MARKER = "BENCH_RESULT "


class NotAResult(RuntimeError):
    """A wrk run that had non-2xx replies or socket errors: its figures must not be reported."""

    def __init__(self, command: str, errors: dict[str, int]) -> None:
        super().__init__(f"not a result: {sum_failures(errors)} failed requests {errors}: {command}")
        self.errors = errors


def sum_failures(errors: dict[str, int]) -> int:
    """Requests that failed: socket errors and timeouts, plus replies outside 2xx (`non2xx`, counted by
    request.lua, includes wrk's own 4xx/5xx `status` count, so only the larger of the two is taken)."""
    sockets = sum(v for k, v in errors.items() if k not in ("status", "non2xx"))
    return sockets + max(errors.get("status", 0), errors.get("non2xx", 0))


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput, latency percentiles in milliseconds, and failed-request counts."""

    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: dict[str, int]
    command: str = field(compare=False)

    @property
    def failed(self) -> int:
        return sum_failures(self.errors)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"failed": self.failed}


def taskset(cpus: str | None) -> list[str]:
    """A `taskset -c CPUS` prefix, or nothing when no pinning is asked for or possible."""
    if not cpus or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


def parse(output: str, connections: int, seconds: float, command: str) -> LoadResult:
    """The result line of request.lua's `done` hook, converted to req/s and milliseconds."""
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{output}")
    raw = json.loads(line[len(MARKER) :])
    lat = raw["latency_us"]
    duration = raw["duration_us"] / 1e6
    return LoadResult(
        connections=connections,
        seconds=seconds,
        requests=raw["requests"],
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=lat["p50"] / 1000,
        p99_ms=lat["p99"] / 1000,
        p999_ms=lat["p99.9"] / 1000,
        max_ms=lat["max"] / 1000,
        errors={k: int(v) for k, v in raw["errors"].items()},
        command=command,
    )


def wrk_command(url: str, connections: int, seconds: float, cpus: str | None) -> list[str]:
    duration = f"{max(1, round(seconds))}s"
    return [
        *taskset(cpus),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]


def start(
    url: str,
    *,
    connections: int,
    seconds: float,
    token: str,
    body: bytes | None = None,
    reply_bytes: int | None = None,
    path_template: str | None = None,
    path_range: int = 1,
    cpus: str | None = None,
    namespace: str | None = None,
) -> tuple[subprocess.Popen[str], str, Path | None]:
    """Start wrk in the background; finish it with `finish`. Several can run at once."""
    env = {**os.environ, "BENCH_TOKEN": token}
    body_path: Path | None = None
    if body is not None:
        fd, name = tempfile.mkstemp(prefix="kubekms-bench-", suffix=".json")
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        body_path = Path(name)
        env["BENCH_BODY_FILE"] = name
    if reply_bytes is not None:
        env["BENCH_REPLY_BYTES"] = str(reply_bytes)
    if path_template is not None:
        env["BENCH_PATH_TEMPLATE"] = path_template
        env["BENCH_RANGE"] = str(path_range)
    if namespace is not None:
        env["BENCH_NAMESPACE"] = namespace
    cmd = wrk_command(url, connections, seconds, cpus)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The recorded command names the inputs without their values (the token is a secret).
    shown = [
        f"{k}={'<token>' if k == 'BENCH_TOKEN' else ('<body.json>' if k == 'BENCH_BODY_FILE' else v)}"
        for k, v in env.items()
        if k.startswith("BENCH_")
    ]
    return proc, " ".join([*shown, shlex.join(cmd)]), body_path


def finish(
    started: tuple[subprocess.Popen[str], str, Path | None],
    connections: int,
    seconds: float,
    *,
    allow_failures: bool = False,
) -> LoadResult:
    """Wait for a `start`ed run; NotAResult if any request failed (unless `allow_failures`)."""
    proc, command, body_path = started
    try:
        output, _ = proc.communicate(timeout=seconds + 60)
    finally:
        if body_path is not None:
            body_path.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {command}\n{output}")
    result = parse(output, connections, seconds, command)
    if result.failed and not allow_failures:
        raise NotAResult(command, result.errors)
    return result


def run(
    url: str, *, connections: int, seconds: float, allow_failures: bool = False, **kw: object
) -> LoadResult:
    """One wrk run to completion (keyword arguments as for `start`); NotAResult as for `finish`."""
    started = start(url, connections=connections, seconds=seconds, **kw)  # type: ignore[arg-type]
    return finish(started, connections, seconds, allow_failures=allow_failures)
