"""The official Node SDK (`@infisical/sdk` from npm) against a live `kubekms-api`, via a node script.

`make test` installs the SDK into tests/integration/sdk/node_modules (mk/api.mk).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from fixtures.api import ADMIN, ApiProcess, P

SDK_DIR = Path(__file__).parent / "sdk"


def run_node(env: dict[str, str]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (SDK_DIR / "node_modules" / "@infisical" / "sdk").is_dir():
        pytest.fail(
            "Node.js and @infisical/sdk are required: run `make test` (or `npm ci` in tests/integration/sdk)"
        )
    result = subprocess.run(
        [node, "kms_flow.js"],
        cwd=SDK_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_node_sdk_kms_flow(api_process: ApiProcess) -> None:
    out = run_node({"KUBEKMS_URL": api_process.url, "KUBEKMS_TOKEN": ADMIN, "PROJECT": P})
    assert out["aes"]["name"] == "node-aes" and out["aes"]["encryptionAlgorithm"] == "aes-256-gcm"
    assert out["byName"]["id"] == out["aes"]["id"]
    assert out["decrypted"] == out["plaintext"] and out["ciphertext"] != out["plaintext"]
    assert out["signingAlgorithms"] == ["ECDSA_SHA_512", "ECDSA_SHA_384", "ECDSA_SHA_256"]
    assert out["signed"]["keyId"] == out["ec"]["id"]
    assert out["verified"]["signatureValid"] is True
    public = load_der_public_key(base64.b64decode(out["publicKey"]))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        base64.b64decode(out["signed"]["signature"]), base64.b64decode(out["data"]), ec.ECDSA(hashes.SHA256())
    )
    assert out["deleted"]["id"] == out["aes"]["id"]
