"""The servers of the Transit tests: a fresh OpenBao dev server (the reference) with transit
mounted, and a fresh KubeKMS API process, each on a random free loopback port.

The `bao` binary is the pinned one `make openbao` installs into .tools/ (`make test` depends on
it through TEST_DEPS); a missing binary fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from fixtures.api import ADMIN, ROOT_KEY, TOKENS_YAML, ApiProcess, free_port, start_api

ROOT = Path(__file__).resolve().parents[2]
BAO_ROOT_TOKEN = "root"


def bao_binary() -> str:
    found = shutil.which("bao") or str(ROOT / ".tools" / "bao")
    assert Path(found).is_file(), "the OpenBao binary is missing: run `make openbao`"
    return found


@dataclass
class Server:
    """A Vault-dialect server under test: its address, its all-powerful token, its log."""

    name: str
    url: str
    token: str
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text()


@dataclass
class OpenBao(Server):
    proc: subprocess.Popen[bytes] | None = None


def start_openbao(workdir: Path) -> OpenBao:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "bao.log"
    env = {**os.environ, "HOME": str(workdir)}  # the dev server writes a token helper file there
    env.pop("BAO_ADDR", None)
    env.pop("VAULT_ADDR", None)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={BAO_ROOT_TOKEN}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = OpenBao("openbao", f"http://127.0.0.1:{port}", BAO_ROOT_TOKEN, log_path, proc)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, server.logs()
        try:
            if requests.get(server.url + "/v1/sys/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "OpenBao did not start:\n" + server.logs()
        time.sleep(0.1)
    mounted = requests.post(
        server.url + "/v1/sys/mounts/transit",
        json={"type": "transit"},
        headers={"X-Vault-Token": BAO_ROOT_TOKEN},
        timeout=10,
    )
    assert mounted.status_code == 204, mounted.text
    return server


def stop_openbao(server: OpenBao) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@dataclass
class KubeKms(Server):
    process: ApiProcess | None = None


def start_kubekms(workdir: Path) -> KubeKms:
    """A fresh `kubekms-api` (embedded mode, root-key sealing, the test tokens file)."""
    tokens = workdir / "tokens.yaml"
    tokens.write_text(TOKENS_YAML)
    handle = start_api(
        workdir / "data",
        workdir / "api.log",
        "--tokens-file",
        str(tokens),
        env={"ROOT_ENCRYPTION_KEY": ROOT_KEY},
    )
    assert handle.proc.poll() is None, handle.logs()
    return KubeKms("kubekms", handle.url, ADMIN, handle.log_path, handle)


def run_readme_block(block: str, export: str, env: dict[str, str], cwd: Path | None = None) -> str:
    """Run a README shell block as a user would, its `export` line (the documented address and
    token) replaced by `env`; its stdout, after asserting it succeeded."""
    assert export in block, "the README block no longer sets the address and token as documented"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.replace(export, "")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
