"""Binding a `Route` to aiohttp: authentication, body reading, validation, the view, JSON encoding.

Security property: every route is authenticated unless explicitly marked `public`; the bearer
token is checked before any parsing of params or body (Infisical's order: auth, then schema).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from kms_api.appkeys import IDENTITY, auth_of
from kms_api.auth.base import Identity
from kms_api.body import DEFAULT_LIMIT, read_json
from kms_api.call import Call
from kms_api.fields import INVALID
from kms_api.objects import Schema
from kms_core.errors import Issue, TokenError, Unauthorized, ValidationFailure

View = Callable[[Call], Awaitable[Any]]
MALFORMED = (
    "The provided access token is malformed. Please use a valid token or generate a new one and try again."
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str  # operationId; also the bounded `operation` metrics label
    view: View
    summary: str
    action: str | None = None  # the permission checked (documentation; the service enforces it)
    params: Schema | None = None
    query: Schema | None = None
    body: Schema | None = None
    body_limit: int = DEFAULT_LIMIT
    response: dict[str, Any] = field(default_factory=dict)
    public: bool = False


async def authenticate(request: web.Request) -> Identity:
    """Bearer token -> Identity: 401 without a header, 403 TokenError for anything not a valid token."""
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("Token missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(MALFORMED)
    return await auth_of(request.app).authenticate(token.strip())


def _validate(schema: Schema | None, data: Any) -> dict[str, Any]:
    if schema is None:
        return {}
    issues: list[Issue] = []
    parsed = schema.parse(data, (), issues)
    if parsed is INVALID or issues:
        raise ValidationFailure(issues)
    result: dict[str, Any] = parsed
    return result


def bind(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for `route`: auth, body, params -> body -> query validation, view, JSON."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if not route.public:
            request[IDENTITY] = await authenticate(request)
        raw_body = await read_json(request, route.body_limit) if route.body is not None else None
        params = _validate(route.params, dict(request.match_info))
        body = _validate(route.body, raw_body)
        query = _validate(route.query, dict(request.query))
        result = await route.view(Call(request, params, query, body))
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    return handler
