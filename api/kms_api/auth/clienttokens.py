"""Vault client tokens for Kubernetes mode: what `auth/kubernetes/login` hands a ServiceAccount.

A client token is the ServiceAccount JWT it was exchanged for, sealed under the KEK every
replica and worker shares (`kms_core.sealing`), with its expiry and accessor in clear:
`kkv1.<expires-at>.<accessor>.<base64url(sealed JWT)>`, the clear fields bound to the sealed
part as its associated data. Presenting one re-reviews the JWT inside (`KubernetesAuth`), so the
caller acts as that ServiceAccount with its RBAC verbs, under the same audience rules as the JWT
presented directly.

Security property: a client token never outlives the ServiceAccount credential it came from —
its lifetime is at most `LOGIN_TTL` and at most what the JWT had left, and every use (after the
short review cache) asks the API server again whether the JWT is still valid, so revoking the
ServiceAccount's token (deleting its Pod, Secret or ServiceAccount) revokes the client token.
Nothing in it can be read or forged without the KEK; no token is logged or echoed in errors.
"""

from __future__ import annotations

import binascii
import secrets
import time
from dataclasses import dataclass
from typing import Final

import jwt as pyjwt
import pybase64

from kms_core.errors import TokenError
from kms_core.sealing.base import Sealer, UnsealError

__all__ = ["LOGIN_TTL", "PREFIX", "ClientToken", "is_client_token", "issue", "open_token"]

PREFIX: Final = "kkv1."
LOGIN_TTL: Final = 3600  # seconds; Vault's `lease_duration` of a login
EXPIRED: Final = "The client token has expired. Please log in again."
INVALID: Final = "The provided client token is invalid."
_MAX_CHARS: Final = 16 * 1024  # a JWT of a few KiB, sealed and encoded


@dataclass(frozen=True, slots=True)
class ClientToken:
    token: str
    accessor: str  # not a secret: names the token (audit, `auth.accessor`)
    expires_at: int  # epoch seconds


def is_client_token(token: str) -> bool:
    return token.startswith(PREFIX)


def _aad(expires_at: int, accessor: str) -> bytes:
    return f"kubekms/vault-client-token/v1|{expires_at}|{accessor}".encode("ascii")


def jwt_expiry(token: str) -> int | None:
    """The `exp` of a JWT the API server has just authenticated (None for an opaque token or
    one without `exp`). Read without verifying the signature: the TokenReview already did, and
    the value can only shorten the client token's life."""
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else None


def issue(
    sealer: Sealer, service_account_jwt: str, now: float | None = None, ttl: int = LOGIN_TTL
) -> ClientToken:
    """A client token for a JWT the API server authenticated: valid `ttl` seconds, or until the
    JWT expires if that is sooner."""
    issued = int(now if now is not None else time.time())
    expires_at = issued + ttl
    jwt_exp = jwt_expiry(service_account_jwt)
    if jwt_exp is not None:
        expires_at = min(expires_at, jwt_exp)
    accessor = secrets.token_hex(12)
    sealed = sealer.seal(service_account_jwt.encode("utf-8"), _aad(expires_at, accessor))
    encoded = pybase64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")
    return ClientToken(f"{PREFIX}{expires_at}.{accessor}.{encoded}", accessor, expires_at)


def expiry_of(token: str) -> int:
    """The clear expiry of a client token (TokenError if it has none). Cheap: no unsealing, so
    an expired token is refused before any cache or review."""
    parts = token[len(PREFIX) :].split(".", 2)
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 12:
        raise TokenError(INVALID)
    return int(parts[0])


def open_token(sealer: Sealer, token: str, now: float | None = None) -> str:
    """The ServiceAccount JWT inside a client token; TokenError when expired, malformed, forged
    or sealed under another KEK."""
    if len(token) > _MAX_CHARS or not is_client_token(token):
        raise TokenError(INVALID)
    expires_at = expiry_of(token)
    if (now if now is not None else time.time()) >= expires_at:
        raise TokenError(EXPIRED)
    _exp, accessor, encoded = token[len(PREFIX) :].split(".", 2)
    try:
        sealed = pybase64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return sealer.unseal(sealed, _aad(expires_at, accessor)).decode("utf-8")
    except (binascii.Error, ValueError, UnsealError, UnicodeDecodeError):
        raise TokenError(INVALID) from None
