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

# Per-request values (set by middlewares and views, read by the access log and metrics).
REQ_ID = web.RequestKey("req_id", str)
IDENTITY = web.RequestKey("identity", Identity)
ALGORITHM = web.RequestKey("algorithm", str)  # bounded: enum values only
ERROR_NAME = web.RequestKey("error_name", str)
PROJECT = web.RequestKey("project", str)  # the project an authorisation check was made for (audit)


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
