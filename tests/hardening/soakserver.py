"""The soak's server: one `kubekms-api` process pinned to its own CPU, with its metrics port known.

It runs as a user would run it (info-level access log to a file, embedded SQLite store, root-key
sealer) with the rate limit and concurrency bound off, since one identity carries all the load.
RSS and CPU time come from /proc. Security property: a throwaway data dir and the fixed test root
key; the log is scanned line by line for 500s and tracebacks, never loaded whole or printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fixtures.api import ADMIN, ROOT_KEY, TOKENS_YAML, free_port
from hardening.heyrun import taskset

_LISTENING = re.compile(r'"message": ?"listening"')
_TICK = os.sysconf("SC_CLK_TCK")


class SoakServer:
    """`python -m kms_api` on free ports under `root`; `stop()` ends it with SIGTERM."""

    def __init__(self, root: Path, cpus: str | None) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        tokens = root / "tokens.yaml"
        tokens.write_text(TOKENS_YAML)
        self.log_path = root / "api.log"
        self.cmd = [
            *taskset(cpus), sys.executable, "-m", "kms_api", "--host", "127.0.0.1",
            "--port", str(self.port), "--metrics-port", str(self.metrics_port),
            "--data-dir", str(root / "data"), "--tokens-file", str(tokens),
            "--rate-limit-rps", "0", "--max-concurrency", "0",
        ]  # fmt: skip
        env = {**os.environ, "KUBEKMS_ADMIN_TOKEN": ADMIN, "KUBEKMS_LOG_LEVEL": "info",
               "ROOT_ENCRYPTION_KEY": ROOT_KEY}  # fmt: skip
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kubekms-api exited {self.proc.returncode}; log: {self.log_path}")
            with self.log_path.open(errors="replace") as log:
                if _LISTENING.search(log.read(65536)):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kubekms-api did not start within {timeout}s; log: {self.log_path}")

    def call(self, method: str, path: str, body: Any = None, token: str = ADMIN) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (/proc/PID/stat fields 14 and 15)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log_faults(self) -> dict[str, int]:
        """Tracebacks and 500 access lines in the log, streamed (the log reaches gigabytes)."""
        found = {"tracebacks": 0, "status_500": 0, "bytes": self.log_path.stat().st_size}
        with self.log_path.open(errors="replace") as log:
            for line in log:
                if line.startswith("Traceback (most recent call last)"):
                    found["tracebacks"] += 1
                elif '"status": 500' in line or '"status":500' in line:
                    found["status_500"] += 1
        return found


def cpu_ticks() -> dict[str, tuple[int, int]]:
    """Per-CPU (busy, total) jiffies from /proc/stat: shows what else ran on the server's CPU."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values[:8]]
            out[name[3:]] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))  # minus idle, iowait
    return out


def cpu_busy(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {
        cpu: (after[cpu][0] - b[0]) / max(1, after[cpu][1] - b[1])
        for cpu, b in before.items()
        if cpu in after
    }


class RssSampler(threading.Thread):
    """The server's RSS every `every` seconds, as (seconds since start, KiB)."""

    def __init__(self, server: SoakServer, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.server, self.every = server, every
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic() - self._start, self.server.rss_kib()))
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
