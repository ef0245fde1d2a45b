"""Embedded-mode authentication: an admin token, static tokens and universal-auth machine identities.

- The admin token (KUBEKMS_ADMIN_TOKEN, else `<data-dir>/admin-token`) may do everything.
- Static tokens from the tokens file carry per-project roles (`kms_api.auth.roles`).
- Machine identities log in with clientId/clientSecret and receive a short-lived HS256 JWT signed
  with `<data-dir>/auth-secret`; it is verified from memory, without a database read.

Security property: presented secrets are hashed and compared in constant time against every
configured digest (no early exit that would reveal which entry nearly matched); errors never
contain the token; an identity removed from the tokens file, or whose client id or client secret
was changed in it, loses access on restart even if it still holds an unexpired JWT (each JWT
carries the generation of the credentials it was issued under: `credential_generation`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from kms_api.auth.base import Attempt, Identity
from kms_api.auth.roles import ANY_PROJECT, ROLES
from kms_api.auth.secretfiles import ensure_secret_file
from kms_api.auth.tokenfile import MachineIdentity, TokenFile, load_token_file
from kms_core.errors import Forbidden, PermissionDenied, TokenError, Unauthorized

EXPIRED = "Your token has expired. Please re-authenticate."
MALFORMED = (
    "The provided access token is malformed. Please use a valid token or generate a new one and try again."
)
_AUDIENCE = "kubekms"
_MAX_TOKEN_CHARS = 4096
_ADMIN = Identity(id="admin", name="admin", kind="admin")


@dataclass(frozen=True, slots=True)
class LoginResult:
    access_token: str
    expires_in: int
    max_ttl: int


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _find(digest: bytes, candidates: list[tuple[bytes, str]]) -> str | None:
    """Constant-time scan: every candidate is compared, whatever matched first."""
    found: str | None = None
    for candidate, owner in candidates:
        if hmac.compare_digest(digest, candidate) and found is None:
            found = owner
    return found


Grants = tuple[dict[str, frozenset[str]], frozenset[str] | None]
_NO_GRANTS: Grants = ({}, None)


def _grants(roles: dict[str, str]) -> Grants:
    """Per project, the actions its role and any `*` role allow together; and the `*` actions
    alone (None without a `*` role: other projects are not the identity's)."""
    anywhere = ROLES[roles[ANY_PROJECT]] if ANY_PROJECT in roles else None
    per_project = {
        project: ROLES[role] | (anywhere or frozenset())
        for project, role in roles.items()
        if project != ANY_PROJECT
    }
    return per_project, anywhere


def credential_generation(jwt_secret: str, identity: MachineIdentity) -> str:
    """A short tag of an identity's current credentials (client id and client-secret hash),
    bound into every access token it is issued and checked on every use.

    Changing the client id or the secret in the tokens file changes the tag, so tokens issued
    under the old credentials stop working at the next start, before they expire. Keyed with the
    JWT secret, so the tag in a (readable) JWT gives no offline test of a guessed secret."""
    mac = hmac.new(jwt_secret.encode("utf-8"), b"kubekms/credential-generation/v1", hashlib.sha256)
    mac.update(len(identity.client_id.encode("utf-8")).to_bytes(4, "big"))
    mac.update(identity.client_id.encode("utf-8"))
    mac.update(identity.secret_digest)
    return mac.hexdigest()[:32]


class TokenAuth:
    """The embedded AuthBackend; also serves POST /api/v1/auth/universal-auth/login."""

    def __init__(self, admin_token: str, token_file: TokenFile, jwt_secret: str) -> None:
        self._jwt_secret = jwt_secret
        self._admin_digest = _digest(admin_token)
        self._static = [(t.digest, t.name) for t in token_file.tokens]
        self._identities = {i.name: i for i in token_file.identities}
        self._generations = {i.name: credential_generation(jwt_secret, i) for i in token_file.identities}
        self._client_ids = [(_digest(i.client_id), i.name) for i in token_file.identities]
        # Built once: the per-request path only looks these up.
        self._static_identities = {
            t.name: Identity(id=f"token:{t.name}", name=t.name, kind="token") for t in token_file.tokens
        }
        self._grants = {("token", t.name): _grants(t.roles) for t in token_file.tokens} | {
            ("machine-identity", i.name): _grants(i.roles) for i in token_file.identities
        }

    async def authenticate(self, token: str, attempt: Attempt | None = None) -> Identity:
        # No await below: the caller's budget check, this check and its accounting of a failure
        # run in one step of the event loop, so `attempt` needs no hold.
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise TokenError(MALFORMED)
        digest = _digest(token)
        admin = hmac.compare_digest(digest, self._admin_digest)
        static = _find(digest, self._static)
        if admin:
            return _ADMIN
        if static is not None:
            return self._static_identities[static]
        return self._verify_jwt(token)

    def _verify_jwt(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                options={"require": ["exp", "iat", "identityId"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(EXPIRED) from None
        except jwt.PyJWTError:
            raise TokenError(MALFORMED) from None
        name = claims.get("identityId")
        if claims.get("authTokenType") != "identityAccessToken" or name not in self._identities:
            raise TokenError(MALFORMED)
        generation = claims.get("credentialGeneration")
        # Issued under credentials that have since been rotated (or before generations existed).
        if not isinstance(generation, str) or not hmac.compare_digest(
            generation.encode("utf-8", "surrogatepass"), self._generations[name].encode("ascii")
        ):
            raise TokenError(MALFORMED)
        return Identity(id=f"identity:{name}", name=str(name), kind="machine-identity")

    async def authorize(self, identity: Identity, action: str, project_id: str, key_name: str | None) -> None:
        if identity.kind == "admin" and identity.id == _ADMIN.id:
            return
        per_project, anywhere = self._grants.get((identity.kind, identity.name), _NO_GRANTS)
        allowed = per_project.get(project_id, anywhere)
        if allowed is None:
            raise Forbidden(
                "You are not allowed to access this resource", "You are not member of this project"
            )
        if action not in allowed:
            raise PermissionDenied(action)

    async def login(self, client_id: str, client_secret: str) -> LoginResult:
        """Universal auth: exchange a machine identity's credentials for a short-lived JWT."""
        name = _find(_digest(client_id), self._client_ids)
        identity: MachineIdentity | None = self._identities.get(name) if name is not None else None
        expected = identity.secret_digest if identity is not None else bytes(32)
        secret_ok = hmac.compare_digest(_digest(client_secret), expected)
        if identity is None or not secret_ok:
            raise Unauthorized("Invalid credentials")
        now = int(time.time())
        claims = {
            "identityId": identity.name,
            "clientSecretId": identity.client_id,
            "identityAccessTokenId": str(uuid.uuid4()),
            "authTokenType": "identityAccessToken",
            "credentialGeneration": self._generations[identity.name],
            "aud": _AUDIENCE,
            "iat": now,
            "exp": now + identity.ttl,
        }
        token = jwt.encode(claims, self._jwt_secret, algorithm="HS256")
        return LoginResult(token, identity.ttl, identity.ttl)

    async def close(self) -> None:
        return None


def admin_token(data_dir: Path, env_value: str | None) -> tuple[str, bool]:
    """(token, created): KUBEKMS_ADMIN_TOKEN wins; else `<data-dir>/admin-token`, made on first start."""
    if env_value:
        return env_value, False
    return ensure_secret_file(data_dir / "admin-token")


def build_token_auth(data_dir: Path, tokens_file: Path | None, admin_env: str | None) -> TokenAuth:
    """The embedded backend for a data dir (creating its admin token and JWT secret if absent)."""
    token, _ = admin_token(data_dir, admin_env)
    secret, _ = ensure_secret_file(data_dir / "auth-secret", 48)
    token_file = load_token_file(tokens_file) if tokens_file is not None else TokenFile()
    return TokenAuth(token, token_file, secret)
