"""Typed application keys (aiohttp `web.AppKey`) for every resource the views reach.

One module so the app factory, views and tests agree on names and types. The service and auth
backend are built during startup (after the app is frozen), so they live in a mutable holder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from kms_api.auth.base import AuthBackend, Identity
from kms_api.settings import Settings

if TYPE_CHECKING:
    from kms_core.service import KeyService


@dataclass
class Resources:
    service: KeyService | None = None
    auth: AuthBackend | None = None


RESOURCES = web.AppKey("resources", Resources)
SETTINGS = web.AppKey("settings", Settings)
OPENAPI = web.AppKey("openapi", bytes)


@dataclass(slots=True)
class Exchange:
    """Per-request values: set by the middleware, authentication and views; read by the audit
    event, the metrics and the access line. One object (one request lookup) instead of a
    request key each, because the hot path reads them several times per request."""

    req_id: str = ""
    identity: Identity | None = None
    project: str | None = None  # the project an authorisation check was made for (audit)
    algorithm: str = ""  # metrics label; bounded: enum values only
    error_name: str | None = None
    started: float = 0.0  # perf_counter when the middleware received the request
    audited: bool = False  # an audit event was written: it is the request's only log line
    # The reply goes through kms_api.http.protocol, which writes held audit lines before it.
    guarded: bool = False


EXCHANGE = web.RequestKey("exchange", Exchange)


def exchange_of(request: web.BaseRequest) -> Exchange:
    """This request's Exchange (made on first use: the middleware makes it for every routed one)."""
    try:
        return request[EXCHANGE]
    except KeyError:
        exchange = request[EXCHANGE] = Exchange()
        return exchange


def service_of(app: web.Application) -> KeyService:
    service = app[RESOURCES].service
    if service is None:
        raise RuntimeError("the key service is not started")
    return service


def auth_of(app: web.Application) -> AuthBackend:
    auth = app[RESOURCES].auth
    if auth is None:
        raise RuntimeError("the auth backend is not started")
    return auth
