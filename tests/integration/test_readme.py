"""The README's copy-paste examples run unchanged against a live `kubekms-api`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from fixtures.api import ADMIN, ApiProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def _bash_block_after(heading: str) -> str:
    text = README.read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, f"no bash block after {heading!r}"
    return match.group(1)


def _run(script: str, api: ApiProcess) -> list[dict[str, object]]:
    """Run a README block; return the JSON objects it printed (curl prints no newline between them)."""
    env = {"KMS": api.url, "TOKEN": ADMIN, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    decoder, text, objects = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        obj, end = decoder.raw_decode(text)
        objects.append(obj)
        text = text[end:].strip()
    return objects


def test_quickstart_block_creates_a_key_and_encrypts_hello(api_process: ApiProcess) -> None:
    script = _bash_block_after("prints the admin token and a copy-paste example:")
    script = script.replace("export KMS=http://127.0.0.1:8080 TOKEN=$(cat .kubekms/admin-token)", "")
    (out,) = _run(script, api_process)
    assert set(out) == {"ciphertext"}


def test_product_guide_block_round_trips_and_verifies(api_process: ApiProcess) -> None:
    block = _bash_block_after("### The product guide's calls")
    decrypted, verified, digest_signed = _run(block, api_process)
    assert decrypted == {"plaintext": "aGVsbG8="}
    assert verified["signatureValid"] is True
    assert verified["signingAlgorithm"] == "RSASSA_PKCS1_V1_5_SHA_512"
    assert len(str(digest_signed["signature"])) > 600  # 512-byte RSA-4096 signature, base64


def test_key_lifecycle_block_sets_a_policy_and_lists_versions(api_process: ApiProcess) -> None:
    block = _bash_block_after("### Changing the policy: `PATCH /api/v1/kms/keys/:keyId`")
    rotated, patched, versions = _run(block, api_process)
    assert rotated["key"]["version"] == 2  # type: ignore[index]
    assert patched["key"]["name"] == "rotating-key" and "policy" not in patched["key"]  # type: ignore[index]
    assert versions["policy"]["rotationPeriod"] == "1d"  # type: ignore[index]
    assert [(v["version"], v["state"]) for v in versions["versions"]] == [  # type: ignore[attr-defined]
        (2, "primary"), (1, "disabled")]
