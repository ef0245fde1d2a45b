"""Server processes for the benchmarks: `kubekms-api` and the bare baseline, each pinned to its CPUs.

Every server listens on a random free loopback port with a private data dir; readiness is the
"listening" log line both servers write. Security property: the admin and operator tokens are
random per run, passed through the environment and a 0600 tokens file (SHA-256 only), and never
printed; server logs stay in the run's temporary directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen import taskset

BENCH_DIR = Path(__file__).resolve().parent
PROJECT = "bench"
_LISTENING = re.compile(r'"message": ?"listening"')
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (or one of its threads) from /proc."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Identity:
    """The run's secrets: the admin token (setup) and a cryptographic-operator token (load)."""

    admin: str
    operator: str
    root_key: str

    @classmethod
    def random(cls) -> Identity:
        return cls(
            admin="admin-" + secrets.token_urlsafe(32),
            operator="op-" + secrets.token_urlsafe(32),
            root_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        )

    def tokens_file(self, path: Path) -> Path:
        digest = hashlib.sha256(self.operator.encode()).hexdigest()
        path.write_text(
            f"tokens:\n  - name: bench-operator\n    sha256: {digest}\n"
            f"    roles: {{{PROJECT}: cryptographic-operator}}\n"
        )
        path.chmod(0o600)
        return path


class Server:
    """One server subprocess; `stop()` ends it (and its workers) with SIGTERM."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.command = shlex.join(cmd)
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 60) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.logs()[-4000:]}")
            if _LISTENING.search(self.logs()):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {timeout}s:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_mib(self) -> float:
        """Resident memory of the server and its worker children, in MiB (Linux /proc)."""
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total_kib = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        return total_kib / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_api(
    workdir: Path,
    identity: Identity,
    *,
    cpus: str | None,
    workers: int = 1,
    data_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    name: str = "kubekms-api",
    python_args: tuple[str, ...] = (),
) -> Server:
    """`kubekms-api` on a free port: embedded store, token auth, root-key sealer unless HSM env given."""
    port = free_port()
    data_dir = data_dir or workdir / f"data-{port}"
    tokens = identity.tokens_file(workdir / "tokens.yaml")
    # One identity carries the whole load, so the per-identity rate limit (a protection for
    # shared deployments) would cap the measurement instead of the server: it is switched off.
    shown_env = {"KUBEKMS_RATE_LIMIT_RPS": "0", "KUBEKMS_LOG_LEVEL": "info"}
    env = {**os.environ, "KUBEKMS_ADMIN_TOKEN": identity.admin, **shown_env}
    env.pop("ROOT_ENCRYPTION_KEY", None)
    env.update(extra_env if extra_env is not None else {"ROOT_ENCRYPTION_KEY": identity.root_key})
    cmd = [
        *taskset(cpus),
        sys.executable,
        *python_args,
        "-m",
        "kms_api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--metrics-port",
        str(free_port()),
        "--workers",
        str(workers),
        "--tokens-file",
        str(tokens),
    ]
    server = Server(name, cmd, env, workdir / f"{name}-{port}.log", port)
    server.command = " ".join(f"{k}={v}" for k, v in shown_env.items()) + " " + server.command
    return server.wait_ready()


def start_baseline(workdir: Path, *, cpus: str | None, workers: int = 1) -> Server:
    port = free_port()
    cmd = [
        *taskset(cpus),
        sys.executable,
        str(BENCH_DIR / "baseline_server.py"),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server("baseline", cmd, dict(os.environ), workdir / f"baseline-{port}.log", port).wait_ready()


def start_bare(workdir: Path, *, cpus: str | None) -> Server:
    """The truly bare endpoint (bare_server.py): no logging, no request id, no auth."""
    port = free_port()
    cmd = [*taskset(cpus), sys.executable, str(BENCH_DIR / "bare_server.py"), "--port", str(port)]
    return Server("bare", cmd, dict(os.environ), workdir / f"bare-{port}.log", port).wait_ready()


def call(server: Server, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any, bytes]:
    """One HTTP request (stdlib client); returns (status, parsed JSON or None, raw body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, raw
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None, raw


def create_key(server: Server, identity: Identity, name: str, usage: str, algorithm: str) -> str:
    status, body, _ = call(
        server,
        "POST",
        "/api/v1/kms/keys",
        identity.admin,
        {"projectId": PROJECT, "name": name, "keyUsage": usage, "algorithm": algorithm},
    )
    if status != 200:
        raise RuntimeError(f"creating {algorithm} key {name}: {status} {body}")
    key_id: str = body["key"]["id"]
    return key_id
