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


def _http(port: int, method: str, path: str, body: dict[str, Any] | None) -> bytes:
    """One HTTP/1.1 request's bytes (admin token, connection closed after the reply)."""
    from fixtures.api import ADMIN

    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def _reply(sock: Any) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_reply_never_leaves_before_its_audit_event_is_written(tmp_path: Path) -> None:
    """The server's log is a pipe the test fills to the brim, so writing the audit event blocks
    the process: the encrypt reply must not arrive while the event cannot be written, and it
    arrives once the pipe is drained, with its event (same reqId) in what was drained. A server
    that sent replies before writing their events (or wrote events after the reply) fails here."""
    import base64
    import os
    import socket
    import subprocess
    import sys
    import time

    from fixtures.api import ADMIN, ROOT_KEY, P, free_port

    port = free_port()
    read_end, write_end = os.pipe()
    # A second open file description of the pipe's write end, non-blocking for the test only
    # (the server's stays blocking): used to fill the pipe.
    filler = os.open(f"/proc/self/fd/{write_end}", os.O_WRONLY | os.O_NONBLOCK)
    os.set_blocking(read_end, False)
    env = {
        **os.environ,
        "KUBEKMS_ADMIN_TOKEN": ADMIN,
        "ROOT_ENCRYPTION_KEY": ROOT_KEY,
        "KUBEKMS_LOG_LEVEL": "info",
    }
    cmd = [sys.executable, "-m", "kms_api", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(tmp_path / "data"), "--metrics-port", str(free_port())]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=write_end, stderr=write_end)
    os.close(write_end)
    log = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            log.extend(chunk)

    try:
        deadline = time.monotonic() + 30
        while b'"listening"' not in log:
            assert proc.poll() is None and time.monotonic() < deadline, log.decode(errors="replace")
            drain()
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_http(port, "POST", "/api/v1/kms/keys", {"projectId": P, "name": "ordered"}))
            created = _reply(sock)
        key_id = json.loads(created.split(b"\r\n\r\n", 1)[1])["key"]["id"]
        time.sleep(0.3)
        drain()
        # Fill the pipe completely: 4 KiB writes are atomic (all or EAGAIN), then single bytes.
        for size in (4096, 1):
            while True:
                try:
                    os.write(filler, b"\n" * size)
                except BlockingIOError:
                    break
        before = len(log)
        plaintext = base64.b64encode(b"ordered").decode()
        with socket.create_connection(("127.0.0.1", port), timeout=1.5) as sock:
            sock.sendall(_http(port, "POST", f"/api/v1/kms/keys/{key_id}/encrypt", {"plaintext": plaintext}))
            with pytest.raises(TimeoutError):
                early = sock.recv(65536)
                pytest.fail(f"the reply left while its audit event could not be written: {early[:80]!r}")
            drain()  # room in the pipe again: the event is written, then the reply is sent
            sock.settimeout(10)
            reply = _reply(sock)
        head, body = reply.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), reply
        req_id = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"x-request-id:")
        )
        assert json.loads(body)["ciphertext"]
        time.sleep(0.2)
        drain()
        events = [json.loads(line) for line in log[before:].splitlines() if line.startswith(b"{")]
        [event] = [e for e in events if e.get("reqId") == req_id]
        assert (event["type"], event["outcome"], event["keyId"]) == ("cmek-encrypt", "success", key_id)
    finally:
        proc.terminate()
        try:
            while proc.poll() is None:
                drain()  # a blocked log write must not keep the process from stopping
                time.sleep(0.05)
        finally:
            proc.wait(timeout=20)
            os.close(filler)
            os.close(read_end)
