"""Vault's reply envelope and error bodies, and the mapping of every failure onto them.

Success: `{request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth}`.
Failure: `{"errors": [...]}` with Vault's status codes: 400 bad input, 403 `permission denied`
(for a missing, malformed, unknown or unauthorised token alike), 404 unknown key or path, 405
method. `VaultError` carries a message OpenBao answers for the same request (the differential
tests in tests/transit prove them).

Security property: a failure's reply is a fixed text or one built from caller-supplied names;
authentication and authorisation failures all read `permission denied`, as in Vault, so they
do not tell a missing token from a forbidden one; unexpected failures are logged, never echoed.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import orjson
from aiohttp import web

from kms_api.appstate import exchange_of
from kms_api.http.error_replies import HEADER, RequestTimeout, unexpected
from kms_api.http.random_pool import RandomPool
from kms_core.errors import (
    BadRequest,
    Forbidden,
    KmsError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Timeout,
    TokenError,
    Unauthorized,
    Unavailable,
    ValidationFailure,
)

__all__ = ["PREFIX", "VaultError", "error_reply", "reply", "request_id", "wrap", "wrapped"]

PREFIX: Final = "/v1/"
PERMISSION_DENIED: Final = "permission denied"
# Vault's multierror rendering of one error (hashicorp/go-multierror), as OpenBao sends it.
UNSUPPORTED_PATH: Final = "1 error occurred:\n\t* unsupported path\n\n"
UNSUPPORTED_OPERATION: Final = "1 error occurred:\n\t* unsupported operation\n\n"


class VaultError(BadRequest):
    """A failure with Vault's own status and messages (an empty list is Vault's bare 404)."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__(messages[0] if messages else "")
        self.status = status
        self.errors = list(messages)


# The variant nibble (10xx): any hex digit's two low bits under 8.
_VARIANT: Final = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
_UUID_CHARS: Final = 36


def _uuids(count: int = 128) -> str:
    """`count` random version-4 UUIDs, formatted at once from 16 random bytes each (one system
    call per `count` replies)."""
    h = secrets.token_hex(16 * count)
    return "".join(
        f"{u[:8]}-{u[8:12]}-4{u[13:16]}-{_VARIANT[u[16]]}{u[17:20]}-{u[20:]}"
        for u in (h[i : i + 32] for i in range(0, len(h), 32))
    )


# Vault's `request_id`: a random (version 4) UUID, sliced from a pool of preformatted ones
# instead of a `uuid.uuid4()` object per reply.
_IDS = RandomPool(_uuids, _UUID_CHARS)


def request_id() -> str:
    """A random version-4 UUID."""
    return _IDS.take()


def wrap(data: Any) -> dict[str, Any]:
    """The envelope of a successful logical response."""
    return {
        "request_id": request_id(),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


# `wrap`'s constant fields, encoded once: orjson writes a dict's keys in order, so these bytes
# around the request id and the data's own encoding are exactly `orjson.dumps(wrap(data))`.
_HEAD: Final = b'{"request_id":"'
_DATA: Final = b'","lease_id":"","renewable":false,"lease_duration":0,"data":'
_TAIL: Final = b',"wrap_info":null,"warnings":null,"auth":null}'


def wrapped(data: Any, status: int = 200) -> web.Response:
    """`reply(wrap(data), status)` without building the envelope: the crypto routes' replies."""
    body = b"".join((_HEAD, request_id().encode(), _DATA, orjson.dumps(data), _TAIL))
    return web.Response(body=body, status=status, content_type="application/json")


def reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _errors(
    req_id: str, status: int, messages: list[str], headers: dict[str, str] | None = None
) -> web.Response:
    response = reply({"errors": messages}, status)
    response.headers[HEADER] = req_id
    if headers:
        response.headers.update(headers)
    return response


def _status(exc: KmsError) -> tuple[int, list[str], str]:
    """(status, errors, error name for the metrics) of a domain failure."""
    if isinstance(exc, VaultError):
        return exc.status, exc.errors, "VaultError"
    if isinstance(exc, Unauthorized | TokenError | PermissionDenied | Forbidden):
        return 403, [PERMISSION_DENIED], "PermissionDenied"
    if isinstance(exc, RateLimited):
        return 429, [exc.message], "RateLimitExceeded"
    if isinstance(exc, Unavailable):
        return 503, [exc.message], "ServiceUnavailable"
    if isinstance(exc, Timeout):
        return 504, [exc.message], "GatewayTimeout"
    if isinstance(exc, PayloadTooLarge):
        return 413, [exc.message], "PayloadTooLarge"
    if isinstance(exc, NotFound):
        return 404, [exc.message], "NotFound"
    if isinstance(exc, BadRequest):
        return 400, [exc.message], "BadRequest"
    if isinstance(exc, RequestTimeout):
        return 408, [exc.message], "RequestTimeout"
    if isinstance(exc, ValidationFailure):
        return 400, [exc.message], "ValidationFailure"
    return 500, ["internal error"], "InternalServerError"


def error_reply(request: web.Request, req_id: str, exc: Exception) -> web.Response | None:
    """The `kms_api.http.error_replies.ErrorEncoder` of every path under `/v1/`."""
    exchange = exchange_of(request)
    if isinstance(exc, KmsError):
        status, messages, name = _status(exc)
        exchange.error_name = name
        headers = None
        if isinstance(exc, RateLimited | Unavailable):
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        if status >= 500 and name == "InternalServerError":
            unexpected(request, req_id, exc)
        return _errors(req_id, status, messages, headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            return None  # re-raised by the caller
        exchange.error_name = "HTTPError"
        if isinstance(exc, web.HTTPMethodNotAllowed):
            return _errors(req_id, 405, [UNSUPPORTED_OPERATION])
        if isinstance(exc, web.HTTPNotFound):
            return _errors(req_id, 404, [UNSUPPORTED_PATH])
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return _errors(req_id, 413, ["Request body is too large"])
        return _errors(req_id, exc.status, [exc.reason])
    unexpected(request, req_id, exc)
    return _errors(req_id, 500, ["internal error"])
