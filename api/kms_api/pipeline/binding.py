"""Binding a `Route` to aiohttp: authentication, rate limit, body, validation, the handler, the
encoder, then the audit event and the metrics label, both from the operation's `Outcome`.

Security property: every route is authenticated unless explicitly marked `public`; the bearer
token is checked before any parsing of params or body (Infisical's order: auth, then schema);
each identity is rate limited right after authentication; failed authentications spend the
client address's small failed-authentication budget, checked before any authentication work;
every audited operation leaves one audit event, whatever its outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from kms_api.appstate import auth_of, exchange_of
from kms_api.auth.base import Attempt, Identity
from kms_api.http.json_body import read_json
from kms_api.http.limits import EXEMPT_ROUTES, FAILED_AUTH, LIMITER, AddressAttempt, client_address
from kms_api.observe import audit
from kms_api.pipeline.call import Call
from kms_api.pipeline.route import Route, TokenReader
from kms_api.schema import projects
from kms_api.schema.composite_fields import Schema
from kms_api.schema.fields import INVALID
from kms_core.errors import Issue, TokenError, Unauthorized, ValidationFailure
from kms_core.outcome import Outcome, failure_of

__all__ = ["MALFORMED", "Route", "admit", "authenticate", "bearer_token", "bind"]

MALFORMED = (
    "The provided access token is malformed. Please use a valid token or generate a new one and try again."
)


def bearer_token(request: web.Request) -> str:
    """The `Authorization: Bearer` token: 401 without a header, 403 TokenError when malformed."""
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("Token missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(MALFORMED)
    return token.strip()


async def authenticate(
    request: web.Request, attempt: Attempt | None = None, read_token: TokenReader | None = None
) -> Identity:
    """Token -> Identity (the route's `token` reader, `Authorization: Bearer` by default); 403
    TokenError for anything not a valid token."""
    token = (read_token or bearer_token)(request)
    return await auth_of(request.app).authenticate(token, attempt)


def _validate(schema: Schema | None, data: Any) -> dict[str, Any]:
    if schema is None:
        return {}
    issues: list[Issue] = []
    parsed = schema.parse(data, (), issues)
    if parsed is INVALID or issues:
        raise ValidationFailure(issues)
    result: dict[str, Any] = parsed
    return result


async def admit(request: web.Request, route: Route) -> Identity | None:
    """Authenticate (unless public) and take a rate-limit token for the caller.

    The client address's failed-authentication budget is checked first, before the token is
    even looked at (and the login route checks it before reading its body), so an address that
    keeps presenting bad credentials costs no hashing and no TokenReview."""
    limiter = request.app.get(LIMITER)
    failed = request.app.get(FAILED_AUTH)
    if route.public:
        if limiter is not None and route.name not in EXEMPT_ROUTES:
            limiter.check(client_address(request), "address")
        if failed is not None and route.checks_credentials:
            failed.check(client_address(request))
        return None
    if failed is None:
        identity = await authenticate(request, None, route.token)
    else:
        address = client_address(request)
        failed.check(address)
        try:
            identity = await authenticate(request, AddressAttempt(failed, address), route.token)
        except TokenError:
            failed.spend(address)
            raise
    exchange_of(request).identity = identity
    if limiter is not None:
        limiter.check(identity.id, "identity")
    return identity


def bind(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for `route`: auth, body, params -> body -> query validation, the
    handler, the encoder; then the audit event and the metrics label from the outcome (or from
    the context a failure carries, kms_core.outcome.failure_of)."""

    # Looked up once: the route table is static.
    params_schema, body_schema, query_schema = route.params, route.body, route.query
    body_limit, run, encode, label = route.body_limit, route.handler, route.encode, route.label
    event = route.audit
    # Routes that name a project get the mode's project rule (a namespace in Kubernetes mode).
    project_in_body = projects.takes_project(body_schema)
    project_in_query = projects.takes_project(query_schema)

    async def handler(request: web.Request) -> web.StreamResponse:
        call = Call(request)
        outcome: Outcome[Any]
        try:
            call.identity = await admit(request, route)
            raw_body = await read_json(request, body_limit) if body_schema is not None else None
            if params_schema is not None:
                call.params = _validate(params_schema, dict(request.match_info))
            if body_schema is not None:
                call.body = _validate(body_schema, raw_body)
            # The query string is only parsed for routes that take one.
            if query_schema is not None:
                call.query = _validate(query_schema, dict(request.query))
            if project_in_body or project_in_query:
                projects.check(request.app, call.body if project_in_body else call.query)
            outcome = await run(call)
            reply = encode(call, outcome)
        except Exception as exc:
            failed = failure_of(exc)
            if label is not None:
                exchange_of(request).algorithm = label(call, failed, False)
            if event is not None:
                audit.record(call, event, failed, exc)
            raise
        if label is not None:
            exchange_of(request).algorithm = label(call, outcome, True)
        if event is not None:
            audit.record(call, event, outcome)
        if isinstance(reply, web.StreamResponse):
            return reply
        return web.Response(body=orjson.dumps(reply), content_type="application/json")

    return handler
