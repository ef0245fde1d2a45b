"""The real `kubekms-api` process: the seed's curl flows, openssl digests, restart on the same data
dir, access logs, metrics, refusal to start under a wrong root key, graceful SIGTERM, workers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from fixtures.api import ADMIN, OPERATOR, ROOT_KEY, Api, ApiProcess, P, b64, start_api, unb64

MESSAGE = b"Hello, World"


def log_lines(handle: ApiProcess) -> list[dict[str, Any]]:
    lines = []
    for line in handle.logs().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def wait_for_workers(handle: ApiProcess, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and handle.logs().count('"listening"') < count:
        time.sleep(0.1)


def openssl_sha512_b64(data: bytes) -> str:
    """`echo -n ... | openssl dgst -sha512 -binary | openssl base64`, as in the seed document."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha512", "-binary"], input=data, capture_output=True, check=True
    )
    encoded = subprocess.run(
        ["openssl", "base64", "-A"], input=digest.stdout, capture_output=True, check=True
    )
    return encoded.stdout.decode().strip()


async def test_seed_flows_restart_logs_and_metrics(
    api_process: ApiProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    api = Api(http, api_process.url)
    # Encryption guide: create -> encrypt -> decrypt (V1 field name, as in the seed's sample request)
    reply = await api.call(
        "POST",
        "/api/v1/kms/keys",
        {"projectId": P, "name": "my-secret-key", "description": "...", "encryptionAlgorithm": "aes-256-gcm"},
    )
    assert reply.status == 200
    aes = reply.body["key"]
    ct = (await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": b64(b"hello")})).body[
        "ciphertext"
    ]
    pt = (await api.call("POST", api.key(aes["id"], "decrypt"), {"ciphertext": ct})).body["plaintext"]
    assert unb64(pt) == b"hello"
    # Signing guide: RSA_4096 with RSASSA_PKCS1_V1_5_SHA_512
    rsa = await api.create("signer", keyUsage="sign-verify", encryptionAlgorithm="RSA_4096")
    alg = "RSASSA_PKCS1_V1_5_SHA_512"
    data = b64(MESSAGE)
    sig = await api.call("POST", api.key(rsa["id"], "sign"), {"data": data, "signingAlgorithm": alg})
    assert sig.status == 200 and sig.body["keyId"] == rsa["id"] and sig.body["signingAlgorithm"] == alg
    signature = sig.body["signature"]
    ver = await api.call(
        "POST", api.key(rsa["id"], "verify"), {"data": data, "signature": signature, "signingAlgorithm": alg}
    )
    assert ver.body == {"signatureValid": True, "keyId": rsa["id"], "signingAlgorithm": alg}
    # FAQ: digest signing with an openssl-made SHA-512 digest gives the same signature
    digest = openssl_sha512_b64(MESSAGE)
    assert base64.b64decode(digest) == hashlib.sha512(MESSAGE).digest()
    dsig = await api.call(
        "POST", api.key(rsa["id"], "sign"), {"data": digest, "signingAlgorithm": alg, "isDigest": True}
    )
    assert dsig.body["signature"] == signature
    dver = await api.call(
        "POST",
        api.key(rsa["id"], "verify"),
        {"data": digest, "signature": signature, "signingAlgorithm": alg, "isDigest": True},
    )
    assert dver.body["signatureValid"] is True
    # a rotated key's old ciphertext, to check after restart
    await api.call("POST", api.key(aes["id"], "rotate"))
    ct2 = (await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": b64(b"after")})).body[
        "ciphertext"
    ]
    await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": "YQ"}, token=OPERATOR)

    # Metrics on the separate port
    metrics_port = int(api_process.proc.args[api_process.proc.args.index("--metrics-port") + 1])  # type: ignore[union-attr]
    async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
        text = await resp.text()
    assert re.search(
        r'kubekms_requests_total\{algorithm="aes-256-gcm",operation="encryptWithKmsKey",'
        r'status_class="2xx"\} 3',
        text,
    )
    assert 'algorithm="RSASSA_PKCS1_V1_5_SHA_512",operation="signWithKmsKey",status_class="2xx"} 2.0' in text
    assert 'algorithm="aes-256-gcm",operation="createKmsKey"' in text
    assert "kubekms_request_duration_seconds_bucket" in text
    assert rsa["id"] not in text and "kubekms_sealer_operations_total" in text

    # One JSON line per request, allow-listed fields, no payloads or tokens: the audit event for
    # key operations (it carries the access fields), an access line for everything else.
    async with http.get(f"{api_process.url}/healthz") as health_resp:
        assert health_resp.status == 200
    assert api_process.stop() == 0
    lines = log_lines(api_process)
    access = [line for line in lines if line.get("message") == "request"]
    audit = [line for line in lines if line.get("message") == "audit"]
    enc = [line for line in audit if line["route"] == "/api/v1/kms/keys/{keyId}/encrypt"]
    assert enc and enc[0]["keyId"] == aes["id"] and enc[0]["method"] == "POST" and enc[0]["status"] == 200
    assert enc[0]["identity"] == "admin" and enc[0]["reqId"].startswith("req-") and enc[0]["duration_ms"] >= 0
    assert any(line["identity"] == "token:operator" for line in enc)
    assert not [line for line in access if line["route"] == "/api/v1/kms/keys/{keyId}/encrypt"]
    health = [line for line in access if line["route"] == "/healthz"]
    assert health and health[-1]["status"] == 200 and health[-1]["duration_ms"] >= 0
    assert len({line["reqId"] for line in access + audit}) == len(access + audit)  # once each
    log_text = api_process.logs()
    for secret in [ADMIN, OPERATOR, ct, b64(b"hello"), signature, ROOT_KEY]:
        assert secret not in log_text

    # Restart on the same data dir: every key and old ciphertext still works
    again = start_api(api_process.data_dir, tmp_path / "api2.log", env={"ROOT_ENCRYPTION_KEY": ROOT_KEY})
    try:
        api = Api(http, again.url)
        for old, plain in [(ct, b"hello"), (ct2, b"after")]:
            reply = await api.call("POST", api.key(aes["id"], "decrypt"), {"ciphertext": old})
            assert unb64(reply.body["plaintext"]) == plain
        ver = await api.call(
            "POST",
            api.key(rsa["id"], "verify"),
            {"data": data, "signature": signature, "signingAlgorithm": alg},
        )
        assert ver.body["signatureValid"] is True
        assert (await api.call("GET", api.key(aes["id"]))).body["key"]["version"] == 2
    finally:
        assert again.stop() == 0


def _fingerprint(data_dir: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_dir.iterdir()) if p.is_file()
    }


async def test_wrong_root_key_refuses_to_start_and_writes_nothing(
    api_process: ApiProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await Api(http, api_process.url).create("k")
    assert api_process.stop() == 0
    before = _fingerprint(api_process.data_dir)
    wrong = base64.b64encode(bytes(32)).decode()
    handle = start_api(api_process.data_dir, tmp_path / "wrong.log", env={"ROOT_ENCRYPTION_KEY": wrong})
    code = handle.proc.wait(timeout=30)
    assert code != 0
    assert "kek_id mismatch" in handle.logs() and wrong not in handle.logs()
    assert _fingerprint(api_process.data_dir) == before


async def test_first_start_generates_admin_token_and_root_key(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data_dir = tmp_path / "fresh"
    env = {"KUBEKMS_ADMIN_TOKEN": "", "ROOT_ENCRYPTION_KEY": ""}
    handle = start_api(data_dir, tmp_path / "fresh.log", env=env)
    try:
        token = (data_dir / "admin-token").read_text().strip()
        for name in ["admin-token", "auth-secret", "root.key"]:
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        assert handle.logs().count(token) == 1  # printed once, on the terminal, not in a log line
        assert not any(token in json.dumps(line) for line in log_lines(handle))
        api = Api(http, handle.url)
        assert (await api.create("k", token=token))["name"] == "k"
    finally:
        assert handle.stop() == 0
    second = start_api(data_dir, tmp_path / "second.log", env=env)
    try:
        assert token not in second.logs()
        assert (
            await Api(http, second.url).call("GET", f"/api/v1/kms/keys?projectId={P}", token=token)
        ).status == 200
    finally:
        second.stop()


def test_sigterm_lets_in_flight_requests_finish(api_process: ApiProcess) -> None:
    # RSA-4096 generation keeps the handler busy for a while after the request is fully received.
    body = json.dumps(
        {"projectId": P, "name": "late", "keyUsage": "sign-verify", "algorithm": "RSA_4096"}
    ).encode()
    head = (
        f"POST /api/v1/kms/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api_process.port), timeout=30) as sock:
        sock.sendall(head + body)
        time.sleep(0.05)
        api_process.proc.send_signal(signal.SIGTERM)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert api_process.proc.wait(timeout=20) == 0
    messages = [line.get("message") for line in log_lines(api_process)]
    # the request was still running when shutdown began, and it completed (its audit event is
    # its log line)
    assert messages.index("shutting down") < len(messages) - 1 - messages[::-1].index("audit")
    with socket.socket() as probe:  # no longer accepting
        assert probe.connect_ex(("127.0.0.1", api_process.port)) != 0


async def test_workers_share_one_port(tmp_path: Path, tokens_file: Path, http: aiohttp.ClientSession) -> None:
    handle = start_api(
        tmp_path / "data",
        tmp_path / "w.log",
        "--workers",
        "2",
        "--tokens-file",
        str(tokens_file),
        env={"ROOT_ENCRYPTION_KEY": ROOT_KEY},
    )
    try:
        wait_for_workers(handle, 2)
        listening = [line for line in log_lines(handle) if line.get("message") == "listening"]
        assert len({line["pid"] for line in listening}) == 2
        assert len({line["url"] for line in listening}) == 1
        key = await Api(http, handle.url).create("shared")
        for _ in range(20):
            async with aiohttp.ClientSession() as fresh:  # new connections spread over workers
                reply = await Api(fresh, handle.url).call("GET", f"/api/v1/kms/keys/{key['id']}")
                assert reply.status == 200
    finally:
        assert handle.stop() == 0
    pids = {line["pid"] for line in log_lines(handle) if line.get("message") == "audit"}
    assert pids and pids <= {line["pid"] for line in listening}


def test_devserver_prints_a_working_curl_example(tmp_path: Path) -> None:
    from fixtures.api import free_port

    port = free_port()
    env = {
        **os.environ,
        "KUBEKMS_PORT": str(port),
        "KUBEKMS_METRICS_PORT": str(free_port()),
        "KUBEKMS_ADMIN_TOKEN": "",
        "ROOT_ENCRYPTION_KEY": "",
    }
    log = (tmp_path / "dev.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kms_api.devserver"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and '"listening"' not in (tmp_path / "dev.log").read_text():
            time.sleep(0.1)
        text = (tmp_path / "dev.log").read_text()
        assert f"http://127.0.0.1:{port}" in text
        token = (tmp_path / ".kubekms" / "admin-token").read_text().strip()
        assert f"Admin token: {token}" in text and (tmp_path / ".kubekms" / "root.key").exists()
        example, limits = text.split("Try it:\n", 1)[1].split("\n\nLimits", 1)
        # What can answer 429/503 and how to change it, with the values in force.
        assert "100,000 requests/s per identity" in limits and "KUBEKMS_RATE_LIMIT_RPS" in limits
        assert "10 per client address" in limits and "KUBEKMS_AUTH_FAIL_RATE" in limits
        result = subprocess.run(
            ["bash", "-c", example], capture_output=True, text=True, timeout=30, check=True
        )
        ciphertext = json.loads(result.stdout)["ciphertext"]
        assert len(unb64(ciphertext)) == len(b"hello") + 31
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
