"""The one error middleware: request ids, and every failure mapped to `{reqId, statusCode, message, error}`.

Domain errors (`kms_core.errors.KmsError`) carry their status and name; aiohttp's own HTTP errors
(unknown route, body too large) get the same shape; anything else is a 500 "Something went wrong"
whose details go to the log only. Security property: unexpected exception texts never reach the
client, and no response of ours echoes request payloads.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import orjson
from aiohttp import web

from kms_api.appkeys import ERROR_NAME, REQ_ID
from kms_core.errors import KmsError, PayloadTooLarge, RateLimited, Unavailable, ValidationFailure

log = logging.getLogger("kubekms.api")

HEADER = "X-Request-Id"


def new_request_id() -> str:
    return "req-" + secrets.token_urlsafe(10)


def error_body(req_id: str, status: int, message: Any, error: str) -> dict[str, Any]:
    return {"reqId": req_id, "statusCode": status, "message": message, "error": error}


def kms_error_response(req_id: str, exc: KmsError) -> web.Response:
    message: Any = [i.to_dict() for i in exc.issues] if isinstance(exc, ValidationFailure) else exc.message
    headers = {HEADER: req_id}
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return web.Response(
        body=orjson.dumps(error_body(req_id, exc.status, message, exc.error)),
        status=exc.status,
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


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    req_id = new_request_id()
    request[REQ_ID] = req_id
    try:
        response: web.StreamResponse = await handler(request)
    except KmsError as exc:
        request[ERROR_NAME] = exc.error
        if exc.status >= 500:
            log.warning("request failed", extra={"reqId": req_id, "error": exc.error, "status": exc.status})
        return kms_error_response(req_id, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        request[ERROR_NAME] = "HTTPError"
        return _http_error(request, req_id, exc)
    except Exception:
        request[ERROR_NAME] = "InternalServerError"
        log.exception("unhandled error", extra={"reqId": req_id})
        body = error_body(req_id, 500, "Something went wrong", "InternalServerError")
        return web.Response(
            body=orjson.dumps(body), status=500, content_type="application/json", headers={HEADER: req_id}
        )
    response.headers[HEADER] = req_id
    return response
