"""The aiohttp application factory: resources in cleanup contexts, middlewares, routes, OpenAPI.

Resources (sealer -> store -> service, auth backend) are built in one cleanup context so a
startup failure (SealerMismatch, ConfigError) aborts before the server accepts a request, and
shutdown closes them in reverse order. Security property: embedded-mode secrets (admin token,
JWT secret, development root key) are created 0600 in the data dir and never logged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from kms_api import modes
from kms_api.appstate import OPENAPI, RESOURCES, SETTINGS, Resources, service_of
from kms_api.auth.base import AuthBackend, BackendPolicy
from kms_api.http import cors
from kms_api.http.json_body import CRYPTO_LIMIT
from kms_api.http.limits import FAILED_AUTH, LIMITER, FailedAuthLimiter, RateLimiter
from kms_api.http.middleware import request_middleware
from kms_api.infisical.routes import ROUTES, add_routes
from kms_api.observe import metrics
from kms_api.schema.openapi import build_openapi
from kms_api.settings import Settings
from kms_api.transit import routes as transit_routes
from kms_core.sealing.base import Sealer
from kms_core.sealing.factory import describe, from_env
from kms_core.service import KeyService

log = logging.getLogger("kubekms.api")
KEY_COUNT_INTERVAL = 30.0


def build_sealer(settings: Settings) -> Sealer:
    data_dir = settings.data_dir if settings.store == "embedded" else None
    return from_env(settings.env, data_dir)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    sealer = build_sealer(settings)
    log.info(describe(sealer))
    try:
        store, auth = modes.build(settings, sealer)
        service = KeyService(store, sealer, BackendPolicy(auth), deletion_window=settings.deletion_window)
    except BaseException:
        sealer.close()
        raise
    app[RESOURCES].service = service
    app[RESOURCES].auth = auth
    try:
        yield
    finally:
        await service.close()
        await auth.close()
        sealer.close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Embedded mode: this process's lifecycle scheduler (kms_api.modes.embedded.lifecycle),
    stopped before the store closes. Its first pass runs at once: missed rotations happen now."""
    scheduler = modes.embedded.lifecycle(app[SETTINGS], service_of(app))
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()


async def _count_keys(app: web.Application) -> None:
    """Refresh the keys-by-state gauge from the store (`KeyStore.count_by_state`)."""
    store = service_of(app).store
    while True:
        with contextlib.suppress(Exception):  # a failed refresh keeps the last values
            counts = await store.count_by_state()
            if counts is not None:  # None: the store cannot count yet; keep the last values
                metrics.set_key_counts(*counts)
        await asyncio.sleep(KEY_COUNT_INTERVAL)


async def _key_gauge(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_count_keys(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(
    settings: Settings, *, service: KeyService | None = None, auth: AuthBackend | None = None
) -> web.Application:
    """The API application. Without `service`/`auth`, they are built from `settings` at startup;
    a `service` given here must have been built with `auth`'s decisions as its policy
    (`BackendPolicy(auth)`)."""
    app = web.Application(
        middlewares=[request_middleware(settings.max_concurrency)],
        # The largest per-route limit; each route enforces its own (body.read_json).
        client_max_size=CRYPTO_LIMIT,
    )
    app[SETTINGS] = settings
    app[OPENAPI] = orjson.dumps(build_openapi(ROUTES))
    app[RESOURCES] = Resources(service, auth)
    if settings.rate_limit_rps > 0:
        app[LIMITER] = RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)
    if settings.auth_fail_rate > 0:
        app[FAILED_AUTH] = FailedAuthLimiter(settings.auth_fail_rate, settings.auth_fail_burst)
    if service is None or auth is None:
        app.cleanup_ctx.append(_resources)
        if settings.store == "embedded":
            app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(_key_gauge)
    cors.install(app, settings.cors_origins)
    add_routes(app)
    # Vault Transit under /v1/ (ARCHITECTURE.md §8), before the trailing-slash resource is consulted.
    transit_routes.add_routes(app)
    return app
