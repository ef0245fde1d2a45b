"""Request ids, and every failure mapped to `{reqId, statusCode, message, error}` (used by the one
request middleware, `kms_api.http.middleware`, and the connection layer, `kms_api.http.protocol`).

Domain errors (`kms_core.errors.KmsError`) carry only their meaning: `STATUSES` maps each class to
Infisical's HTTP status and `error` name here, at the edge. aiohttp's own HTTP errors
(unknown route, body too large) get the same shape; anything else is a 500 "Something went wrong"
whose details go to the log only. Security property: unexpected exception texts never reach the
client, and no response of ours echoes request payloads.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from kms_api.appstate import exchange_of
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

log = logging.getLogger("kubekms.api")

HEADER = "X-Request-Id"


class RequestTimeout(KmsError):
    """The client did not send its request body in time (an HTTP-edge failure, hence defined here)."""


# Infisical's status and `error` name for each failure (the most specific class wins). A
# `Forbidden` is named by its own `reason`.
STATUSES: dict[type[KmsError], tuple[int, str]] = {
    KmsError: (500, "InternalServerError"),
    BadRequest: (400, "BadRequest"),
    Unauthorized: (401, "UnauthorizedError"),
    TokenError: (403, "TokenError"),
    PermissionDenied: (403, "PermissionDenied"),
    Forbidden: (403, "ForbiddenError"),
    NotFound: (404, "NotFound"),
    RequestTimeout: (408, "RequestTimeout"),
    PayloadTooLarge: (413, "PayloadTooLarge"),
    ValidationFailure: (422, "ValidationFailure"),
    RateLimited: (429, "RateLimitExceeded"),
    Unavailable: (503, "ServiceUnavailable"),
    Timeout: (504, "GatewayTimeout"),
}


def status_of(exc: KmsError) -> tuple[int, str]:
    """The HTTP status and Infisical `error` name `exc` is reported with."""
    for cls in type(exc).__mro__:
        found = STATUSES.get(cls)
        if found is not None:
            if isinstance(exc, Forbidden):
                return found[0], exc.reason
            return found
    raise AssertionError("unreachable: KmsError is in every KmsError's MRO")


# `req-` + 16 url-safe characters (96 random bits): 4,092 random bytes base64-encoded at once
# (12 bytes encode to exactly 16 characters, no padding), so 341 ids per system call.
_IDS = RandomPool(lambda: base64.urlsafe_b64encode(secrets.token_bytes(12 * 341)).decode(), 16)


def new_request_id() -> str:
    return "req-" + _IDS.take()


def error_body(req_id: str, status: int, message: Any, error: str) -> dict[str, Any]:
    return {"reqId": req_id, "statusCode": status, "message": message, "error": error}


def kms_error_response(req_id: str, exc: KmsError) -> web.Response:
    message: Any = [i.to_dict() for i in exc.issues] if isinstance(exc, ValidationFailure) else exc.message
    status, error = status_of(exc)
    headers = {HEADER: req_id}
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return web.Response(
        body=orjson.dumps(error_body(req_id, status, message, error)),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _http_error(request: web.Request, req_id: str, exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return kms_error_response(req_id, PayloadTooLarge("Request body is too large"))
    if isinstance(exc, web.HTTPNotFound | web.HTTPMethodNotAllowed):
        # Fastify answers an unknown method on a known path with the same 404.
        body = error_body(req_id, 404, f"Route {request.method}:{request.path} not found", "Not Found")
        status = 404
    else:
        status = exc.status
        body = error_body(req_id, status, exc.reason, exc.reason.replace(" ", ""))
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers={HEADER: req_id}
    )


# A dialect's own error reply for the paths under its prefix: (request, request id, failure) ->
# the reply, or None to fall back to Infisical's shape. Registered per app (kms_api.transit).
ErrorEncoder = Callable[[web.Request, str, Exception], "web.Response | None"]
ERROR_DIALECTS = web.AppKey("error_dialects", tuple[tuple[str, ErrorEncoder], ...])


def unexpected(request: web.Request, req_id: str, exc: Exception) -> None:
    """Log a failure that is no `KmsError` nor HTTP error (its text goes to the log only)."""
    exchange_of(request).error_name = "InternalServerError"
    log.error("unhandled error", extra={"reqId": req_id}, exc_info=exc)


def error_response(request: web.Request, req_id: str, exc: Exception) -> web.Response:
    """The JSON error reply for a failed request (re-raises an HTTPException below 400): the
    dialect's that owns the path (`ERROR_DIALECTS`), else Infisical's `{reqId, statusCode, ...}`."""
    for prefix, encode in request.app.get(ERROR_DIALECTS, ()):
        if request.path.startswith(prefix):
            reply = encode(request, req_id, exc)
            if reply is not None:
                return reply
    if isinstance(exc, KmsError):
        status, error = status_of(exc)
        exchange_of(request).error_name = error
        if status >= 500:
            log.warning("request failed", extra={"reqId": req_id, "error": error, "status": status})
        return kms_error_response(req_id, exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        exchange_of(request).error_name = "HTTPError"
        return _http_error(request, req_id, exc)
    unexpected(request, req_id, exc)
    body = error_body(req_id, 500, "Something went wrong", "InternalServerError")
    return web.Response(
        body=orjson.dumps(body), status=500, content_type="application/json", headers={HEADER: req_id}
    )
