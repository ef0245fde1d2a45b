"""Reading JSON request bodies with per-route size limits (spec Decisions 3-4).

Security property: a body over the route's limit is refused before it is parsed, a body not
sent within the read timeout is refused with 408 (slow-body clients cannot hold a handler), and
malformed, empty or non-JSON bodies become 422/413 errors in the API's shape, never a 500.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson
from aiohttp import web

from kms_api.appstate import SETTINGS
from kms_api.http.error_replies import RequestTimeout
from kms_core.errors import Issue, PayloadTooLarge, ValidationFailure

CRYPTO_LIMIT: Final = 2 * 1024 * 1024
DEFAULT_LIMIT: Final = 1024 * 1024
TOO_LARGE: Final = "Request body is too large"


def _fail(message: str, code: str = "custom") -> ValidationFailure:
    return ValidationFailure([Issue(code, message, ())])


async def read_bytes(request: web.Request, limit: int) -> bytes:
    """The raw body: 413 over `limit` (declared or received), 408 when it does not arrive within
    the read timeout. Every dialect's body parser starts here."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(TOO_LARGE)
    content = request.content
    if content.is_eof() and content.exception() is None:
        # The whole body already arrived (the usual small request): take it without a deadline,
        # a coroutine or a copy.
        raw = content.read_nowait()
    else:
        settings = request.app.get(SETTINGS)
        try:
            async with asyncio.timeout(settings.read_timeout if settings is not None else None):
                raw = await request.read()
        except TimeoutError:
            raise RequestTimeout("The request body was not received in time") from None
    if len(raw) > limit:
        raise PayloadTooLarge(TOO_LARGE)
    return raw


async def read_json(request: web.Request, limit: int) -> Any:
    """The parsed JSON body, or a KmsError (413 over `limit`, 422 for anything not a JSON document)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(TOO_LARGE)
    if request.content_type != "application/json":
        raise _fail("Content-Type must be application/json", "invalid_type")
    raw = await read_bytes(request, limit)
    if not raw.strip():
        raise _fail("Body cannot be empty when content-type is set to 'application/json'", "invalid_type")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _fail("Body is not valid JSON") from None
