"""Credentials of a real `kubekms-api` process: universal-auth access tokens die with their
credentials (a login, a rotated client secret in the tokens file, a restart on the same data dir
since the product reads the tokens file at start, and the old unexpired token is refused); a
plaintext secret in the tokens file stops the start; secret files open to others are reported."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fixtures.api import ROBOT_ID, ROBOT_SECRET, ROOT_KEY, TOKENS_YAML, _sha, start_api

LOGIN = "/api/v1/auth/universal-auth/login"
# Any authenticated caller gets 404 for it (existence is checked before permissions).
MISSING_KEY = "/api/v1/kms/keys/00000000-0000-4000-8000-000000000000"
MALFORMED = (
    "The provided access token is malformed. Please use a valid token or generate a new one and try again."
)


def _call(url: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_rotated_client_secret_invalidates_access_tokens_across_a_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS_YAML)
    env = {"ROOT_ENCRYPTION_KEY": ROOT_KEY}

    def start(name: str) -> Any:
        handle = start_api(tmp_path / "data", tmp_path / f"{name}.log", "--tokens-file", str(tokens), env=env)
        assert handle.proc.poll() is None, handle.logs()
        return handle

    first = start("first")
    try:
        status, body = _call(first.url, LOGIN, {"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET})
        assert status == 200, body
        old_token = body["accessToken"]
        status, body = _call(first.url, MISSING_KEY, token=old_token)
        assert (status, body["error"]) == (404, "NotFound"), body  # authenticated: the key is missing
    finally:
        first.stop()

    # Same credentials, restarted: the token (60 s TTL) is still good.
    second = start("second")
    try:
        status, body = _call(second.url, MISSING_KEY, token=old_token)
        assert status == 404, body
    finally:
        second.stop()

    new_secret = "robot-client-secret-rotated-9876543210"
    tokens.write_text(TOKENS_YAML.replace(_sha(ROBOT_SECRET), _sha(new_secret)))
    third = start("third")
    try:
        status, body = _call(third.url, MISSING_KEY, token=old_token)
        assert (status, body["error"], body["message"]) == (403, "TokenError", MALFORMED)
        assert _call(third.url, LOGIN, {"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET})[0] == 401
        status, body = _call(third.url, LOGIN, {"clientId": ROBOT_ID, "clientSecret": new_secret})
        assert status == 200, body
        status, body = _call(third.url, MISSING_KEY, token=body["accessToken"])
        assert status == 404, body
        assert old_token not in third.logs() and new_secret not in third.logs()
    finally:
        third.stop()


def test_plaintext_token_in_the_tokens_file_stops_the_start(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "tokens:\n  - name: ci\n    token: plain-s3cr3t-token-value\n    roles: {proj: viewer}\n"
    )
    handle = start_api(
        tmp_path / "data",
        tmp_path / "api.log",
        "--tokens-file",
        str(tokens),
        env={"ROOT_ENCRYPTION_KEY": ROOT_KEY},
    )
    assert handle.proc.wait(timeout=30) != 0
    logs = handle.logs()
    assert "tokens[0]: a plaintext 'token' is not accepted; store its hex SHA-256 as 'sha256'" in logs
    assert "sha256sum" in logs and "plain-s3cr3t-token-value" not in logs
    assert "Traceback" not in logs


def test_secret_files_open_to_others_are_reported_at_start(tmp_path: Path) -> None:
    env = {"ROOT_ENCRYPTION_KEY": ROOT_KEY, "KUBEKMS_ADMIN_TOKEN": ""}  # the data dir's admin-token
    first = start_api(tmp_path / "data", tmp_path / "first.log", env=env)
    first.stop()
    assert "chmod 600" not in first.logs()
    for name in ("admin-token", "auth-secret"):
        (tmp_path / "data" / name).chmod(0o640)
    second = start_api(tmp_path / "data", tmp_path / "second.log", env=env)
    second.stop()
    warned = [line for line in second.logs().splitlines() if "chmod 600" in line]
    assert len(warned) == 2, second.logs()
    assert any("admin-token" in line for line in warned) and any("auth-secret" in line for line in warned)
    for name in ("admin-token", "auth-secret"):
        assert (tmp_path / "data" / name).read_text().strip() not in second.logs()
