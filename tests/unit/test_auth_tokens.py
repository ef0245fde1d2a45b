"""Embedded auth: tokens file parsing, token verification, JWT login, roles (spec §3.2, §4)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from kms_api.auth.roles import ALL_ACTIONS, ROLES
from kms_api.auth.secretfiles import ensure_secret_file
from kms_api.auth.tokenfile import TokenFile, parse_token_file
from kms_api.auth.tokens import EXPIRED, MALFORMED, TokenAuth, build_token_auth
from kms_api.http.error_replies import status_of
from kms_core.errors import ConfigError, Forbidden, PermissionDenied, TokenError, Unauthorized
from kms_core.policy import Action


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


DOC = {
    "tokens": [
        {"name": "reader", "sha256": sha("reader-token"), "roles": {"p": "viewer"}},
        {
            "name": "plain",
            "sha256": sha("plain-token"),
            "roles": {"*": "cryptographic-operator", "p": "viewer"},
        },
    ],
    "identities": [
        {
            "name": "robot",
            "clientId": "cid",
            "clientSecretSha256": sha("csecret"),
            "accessTokenTTL": 60,
            "roles": {"p": "admin"},
        },
        {
            "name": "flash",
            "clientId": "cid2",
            "clientSecretSha256": sha("s2"),
            "accessTokenTTL": 1,
            "roles": {"p": "viewer"},
        },
    ],
}
SECRET = "jwt-signing-secret-for-tests-0123456789"


@pytest.fixture
def auth() -> TokenAuth:
    return TokenAuth("the-admin-token", parse_token_file(DOC), SECRET)


# ---------------------------------------------------------------- tokens file


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"tokens": [{"name": "a", "sha256": "zz", "roles": {}}]}, "sha256 must be the 64-character hex"),
        ({"tokens": [{"name": "a", "sha256": sha("t"), "roles": {"p": "owner"}}]}, "must be one of admin"),
        (
            {"tokens": [{"name": "a", "sha256": sha("t")}, {"name": "a", "sha256": sha("u")}]},
            "duplicate name 'a'",
        ),
        ({"tokens": [{"sha256": sha("t")}]}, "needs a non-empty name"),
        ({"identities": [{"name": "i", "clientId": "c"}]}, "clientSecretSha256 must be the 64-character"),
        (
            {
                "identities": [
                    {"name": "i", "clientId": "c", "clientSecretSha256": sha("x"), "accessTokenTTL": 0}
                ]
            },
            "accessTokenTTL",
        ),
        ({"users": []}, "expected a mapping"),
    ],
)
def test_token_file_errors(doc: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_token_file(doc)


@pytest.mark.parametrize(
    ("entry", "where", "hashed"),
    [
        (
            {"tokens": [{"name": "ci", "token": "s3cr3t-value", "roles": {"p": "viewer"}}]},
            "tokens[0]",
            "sha256",
        ),
        # Even next to a hash: the file must not hold the secret at all.
        (
            {"tokens": [{"name": "ci", "token": "s3cr3t-value", "sha256": sha("s3cr3t-value")}]},
            "tokens[0]",
            "sha256",
        ),
        (
            {"identities": [{"name": "i", "clientId": "c", "clientSecret": "s3cr3t-value"}]},
            "identities[0]",
            "clientSecretSha256",
        ),
    ],
)
def test_plaintext_secrets_are_refused_with_how_to_hash_them(
    entry: dict[str, object], where: str, hashed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_token_file(entry, "tokens.yaml")
    message = str(info.value)
    assert message.startswith(f"tokens.yaml: {where}: a plaintext ")
    assert f"store its hex SHA-256 as {hashed!r}" in message and "sha256sum" in message
    assert "s3cr3t-value" not in message and sha("s3cr3t-value") not in message


def test_token_file_never_echoes_secrets() -> None:
    with pytest.raises(ConfigError) as info:
        parse_token_file({"tokens": [{"name": "a", "sha256": sha("s3cr3t-value"), "roles": {"p": "root"}}]})
    assert "s3cr3t-value" not in str(info.value) and sha("s3cr3t-value") not in str(info.value)


def test_empty_token_file() -> None:
    assert parse_token_file(None) == TokenFile()


# ---------------------------------------------------------------- authenticate


async def test_admin_and_static_tokens(auth: TokenAuth) -> None:
    admin = await auth.authenticate("the-admin-token")
    assert (admin.id, admin.kind) == ("admin", "admin")
    reader = await auth.authenticate("reader-token")
    assert (reader.id, reader.kind) == ("token:reader", "token")
    assert (await auth.authenticate("plain-token")).id == "token:plain"


@pytest.mark.parametrize("token", ["garbage", "the-admin-token ", "x" * 5000, "a.b.c", ""])
async def test_bad_tokens_are_malformed(auth: TokenAuth, token: str) -> None:
    with pytest.raises(TokenError) as info:
        await auth.authenticate(token)
    assert info.value.message == MALFORMED
    assert status_of(info.value) == (403, "TokenError")


async def test_login_issues_a_verifiable_jwt(auth: TokenAuth) -> None:
    result = await auth.login("cid", "csecret")
    assert result.expires_in == 60 and result.max_ttl == 60
    claims = jwt.decode(result.access_token, SECRET, algorithms=["HS256"], audience="kubekms")
    assert claims["identityId"] == "robot"
    assert claims["authTokenType"] == "identityAccessToken"
    assert claims["exp"] - claims["iat"] == 60
    identity = await auth.authenticate(result.access_token)
    assert (identity.id, identity.kind) == ("identity:robot", "machine-identity")


@pytest.mark.parametrize(
    ("client_id", "secret"), [("cid", "wrong"), ("nope", "csecret"), ("cid2", "csecret")]
)
async def test_login_rejects_bad_credentials(auth: TokenAuth, client_id: str, secret: str) -> None:
    with pytest.raises(Unauthorized, match="Invalid credentials"):
        await auth.login(client_id, secret)


async def test_expired_jwt(auth: TokenAuth) -> None:
    token = (await auth.login("cid2", "s2")).access_token
    await auth.authenticate(token)
    await asyncio.sleep(2.1)
    with pytest.raises(TokenError) as info:
        await auth.authenticate(token)
    assert info.value.message == EXPIRED


async def test_jwt_signed_with_another_secret_is_rejected(auth: TokenAuth) -> None:
    now = int(time.time())
    forged = jwt.encode(
        {
            "identityId": "robot",
            "authTokenType": "identityAccessToken",
            "aud": "kubekms",
            "iat": now,
            "exp": now + 60,
        },
        "another-secret-of-sufficient-length-000",
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="malformed"):
        await auth.authenticate(forged)


async def test_jwt_of_a_removed_identity_is_rejected(auth: TokenAuth) -> None:
    token = (await auth.login("cid", "csecret")).access_token
    without_robot = {**DOC, "identities": DOC["identities"][1:]}
    restarted = TokenAuth("the-admin-token", parse_token_file(without_robot), SECRET)
    with pytest.raises(TokenError):
        await restarted.authenticate(token)


# ---------------------------------------------------------------- authorize


async def test_roles(auth: TokenAuth) -> None:
    reader = await auth.authenticate("reader-token")
    await auth.authorize(reader, "read", "p", None)
    with pytest.raises(PermissionDenied) as info:
        await auth.authorize(reader, "encrypt", "p", "k")
    assert info.value.message == "You are not allowed to encrypt on cmek"
    with pytest.raises(Forbidden) as member:
        await auth.authorize(reader, "read", "q", None)
    assert member.value.reason == "You are not member of this project"
    assert status_of(member.value) == (403, "You are not member of this project")
    assert member.value.message == "You are not allowed to access this resource"


async def test_wildcard_and_union_of_roles(auth: TokenAuth) -> None:
    plain = await auth.authenticate("plain-token")
    await auth.authorize(plain, "read", "p", None)  # viewer in p
    await auth.authorize(plain, "encrypt", "p", None)  # operator everywhere
    await auth.authorize(plain, "sign", "anything", None)
    with pytest.raises(PermissionDenied):
        await auth.authorize(plain, "read", "anything", None)


async def test_admin_may_do_everything(auth: TokenAuth) -> None:
    admin = await auth.authenticate("the-admin-token")
    for action in ALL_ACTIONS:
        await auth.authorize(admin, action, "any-project", None)


def test_role_definitions_match_the_spec() -> None:
    assert ROLES["viewer"] == {"read"}
    assert ROLES["cryptographic-operator"] == {
        "encrypt",
        "decrypt",
        "sign",
        "verify",
        "generate-mac",
        "verify-mac",
    }
    assert ROLES["admin"] == ALL_ACTIONS and len(ALL_ACTIONS) == 14
    # Every action the service can ask about is in the admin role, and only there is `restore`.
    assert {a.value for a in Action} == ALL_ACTIONS
    assert all("restore" not in ROLES[r] for r in ("viewer", "cryptographic-operator"))


# ---------------------------------------------------------------- data-dir secrets


def test_secret_files_are_0600_and_stable(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # the mode must not depend on the umask
    try:
        ensure_secret_file(tmp_path / "u" / "auth-secret")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "u" / "auth-secret").stat().st_mode) == 0o600
    value, created = ensure_secret_file(tmp_path / "d" / "admin-token")
    assert created and len(value) >= 40
    assert stat.S_IMODE((tmp_path / "d" / "admin-token").stat().st_mode) == 0o600
    again, created_again = ensure_secret_file(tmp_path / "d" / "admin-token")
    assert (again, created_again) == (value, False)


async def test_build_token_auth_prefers_the_environment(tmp_path: Path) -> None:
    auth = build_token_auth(tmp_path, None, "env-admin")
    assert (await auth.authenticate("env-admin")).kind == "admin"
    assert not (tmp_path / "admin-token").exists()
    assert stat.S_IMODE((tmp_path / "auth-secret").stat().st_mode) == 0o600
    generated = build_token_auth(tmp_path, None, None)
    token = (tmp_path / "admin-token").read_text().strip()
    assert (await generated.authenticate(token)).kind == "admin"


def _rotated(**changes: str) -> dict[str, object]:
    """DOC with the robot identity's credentials changed."""
    robot = {**DOC["identities"][0], **changes}  # type: ignore[index, dict-item]
    return {**DOC, "identities": [robot, *DOC["identities"][1:]]}  # type: ignore[index]


@pytest.mark.parametrize(
    "changes",
    [{"clientSecretSha256": sha("csecret-rotated")}, {"clientId": "cid-rotated"}],
    ids=["secret", "client-id"],
)
async def test_rotating_credentials_invalidates_outstanding_access_tokens(changes: dict[str, str]) -> None:
    before = TokenAuth("the-admin-token", parse_token_file(DOC), SECRET)
    token = (await before.login("cid", "csecret")).access_token
    # A restart with the same credentials keeps the token valid (the JWT secret is on disk)...
    same = TokenAuth("the-admin-token", parse_token_file(DOC), SECRET)
    assert (await same.authenticate(token)).id == "identity:robot"
    # ...a restart after rotation does not, though the token is signed and unexpired.
    after = TokenAuth("the-admin-token", parse_token_file(_rotated(**changes)), SECRET)
    with pytest.raises(TokenError) as info:
        await after.authenticate(token)
    assert info.value.message == MALFORMED
    client_id = changes.get("clientId", "cid")
    secret = "csecret-rotated" if "clientSecretSha256" in changes else "csecret"
    fresh = (await after.login(client_id, secret)).access_token
    assert (await after.authenticate(fresh)).id == "identity:robot"


async def test_tokens_without_a_credential_generation_are_rejected(auth: TokenAuth) -> None:
    """A JWT validly signed by this server but lacking (or with a wrong) generation is refused."""
    claims = jwt.decode(
        (await auth.login("cid", "csecret")).access_token, SECRET, algorithms=["HS256"], audience="kubekms"
    )
    for generation in (None, "0" * 32, 7):
        forged = {k: v for k, v in claims.items() if k != "credentialGeneration"}
        if generation is not None:
            forged["credentialGeneration"] = generation
        with pytest.raises(TokenError, match="malformed"):
            await auth.authenticate(jwt.encode(forged, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("name", ["admin-token", "auth-secret"])
def test_secret_files_open_to_others_are_reported(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    build_token_auth(tmp_path, None, None)  # creates both files, 0600
    caplog.set_level(logging.WARNING, logger="kubekms.auth")
    build_token_auth(tmp_path, None, None)
    assert not [r for r in caplog.records if r.name == "kubekms.auth"]  # 0600: nothing to say
    path = tmp_path / name
    path.chmod(0o644)
    build_token_auth(tmp_path, None, None)
    warnings = [r for r in caplog.records if r.name == "kubekms.auth" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    assert "mode 644" in warnings[0].getMessage() and "chmod 600" in warnings[0].getMessage()
    assert path.read_text().strip() not in warnings[0].getMessage()
