"""The audit trail of a full scenario, and no secret in any log (in-process at DEBUG and a process's stderr).

Constant-time comparisons of secrets (checked by reading the code, not by a test): bearer tokens
and client ids/secrets in `kms_api/auth/tokens.py` (`hmac.compare_digest` over SHA-256 digests,
every candidate scanned), MAC verification in `kms_core/primitives/mac.py`, and the HSM PIN
digest in `kms_core/sealing/hsmsession.py`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fixtures.api import Api
from fixtures.hardening import start_hardened
from hardening import scenario

EVENT_TYPES = {
    "create-cmek", "update-cmek", "rotate-cmek", "delete-cmek", "get-cmeks", "get-cmek", "cmek-encrypt",
    "cmek-decrypt", "cmek-sign", "cmek-verify", "cmek-generate-mac", "cmek-verify-mac",
    "cmek-derive-shared-secret", "cmek-list-signing-algorithms", "cmek-get-public-key",
    "cmek-get-private-key", "cmek-bulk-export-private-keys", "cmek-bulk-import-keys",
    "login-identity-universal-auth",
}  # fmt: skip
AUDIT_FIELDS = {
    "time",
    "type",
    "outcome",
    "status",
    "error",
    "identity",
    "project",
    "keyId",
    "reqId",
    "metadata",
}


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        {name: getattr(r, name) for name in AUDIT_FIELDS} for r in caplog.records if r.name == "kubekms.audit"
    ]


def _assert_no_secrets(text: str, found: scenario.Secrets, where: str) -> None:
    leaked = [needle[:12] + "…" for needle in found.needles() if needle in text]
    assert leaked == [], f"secrets in {where}: {leaked}"


async def test_audit_events_and_log_hygiene_in_process(
    api: Api, rsa_pem: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    found = await scenario.run(api, rsa_pem)
    events = _events(caplog)

    assert {e["type"] for e in events} == EVENT_TYPES
    for event in events:
        assert event["reqId"].startswith("req-") and event["time"].endswith("+00:00")
        assert event["outcome"] in {"success", "denied", "failure"}
    ok = [e for e in events if e["outcome"] == "success"]
    assert all(
        e["status"] == 200 and e["identity"] for e in ok if e["type"] != "login-identity-universal-auth"
    )
    encrypt = next(e for e in ok if e["type"] == "cmek-encrypt")
    assert encrypt["identity"] == "admin" and encrypt["project"] == "proj" and encrypt["keyId"]
    assert any(e["type"] == "cmek-encrypt" and e["identity"] == "identity:robot" for e in ok)
    rotate = next(e for e in ok if e["type"] == "rotate-cmek")
    assert rotate["metadata"]["version"] == 2
    verify_mac = next(e for e in ok if e["type"] == "cmek-verify-mac")
    assert verify_mac["metadata"] == {"macAlgorithm": "HMAC_SHA_256", "macValid": True}
    imported = next(e for e in ok if e["type"] == "cmek-bulk-import-keys")
    assert imported["metadata"] == {"keyNames": ["s-rsa"], "failedKeyNames": ["s-bad"]}

    denied = [e for e in events if e["outcome"] == "denied"]
    by_error = {(e["type"], e["error"], e["identity"]) for e in denied}
    assert ("cmek-encrypt", "PermissionDenied", "token:viewer") in by_error
    assert ("get-cmek", "You are not member of this project", "token:other") in by_error
    assert ("get-cmek", "UnauthorizedError", None) in by_error
    assert ("get-cmek", "TokenError", None) in by_error
    assert ("login-identity-universal-auth", "UnauthorizedError", None) in by_error
    viewer = next(e for e in denied if e["identity"] == "token:viewer")
    assert viewer["project"] == "proj" and viewer["status"] == 403 and viewer["metadata"] == {}

    # No secret anywhere: audit events, every other log record, at DEBUG.
    everything = "\n".join(
        f"{r.name} {r.getMessage()} {json.dumps(vars(r), default=str)}" for r in caplog.records
    )
    _assert_no_secrets(everything, found, "in-process logs")


async def test_no_secret_in_a_real_process_debug_output(tmp_path: Path, rsa_pem: bytes) -> None:
    handle = start_hardened(tmp_path, "--log-level", "debug")
    try:
        async with aiohttp.ClientSession() as http:
            found = await scenario.run(Api(http, handle.url), rsa_pem)
    finally:
        assert handle.stop() == 0
    output = handle.logs()
    assert '"logger":"kubekms.audit"' in output and '"level":"debug"' in output
    _assert_no_secrets(output, found, "process stderr")
