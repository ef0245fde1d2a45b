"""Logging set-up and the access log line of every request that wrote no audit event.

`configure_logging` installs one `JsonLineHandler` (kms_api.observe.jsonlines) on the root logger; the
access line is written through its record-free path, after the reply, and may share a write
with the next lines (see `JsonLineHandler`). Audited requests (every key operation) are logged
by their audit event alone, which carries the same fields: one line per request either way.

Security property: the access line is built from an allow-list (reqId, method, route template,
key id from the path, identity id, status, duration); bodies, query strings, headers and tokens
are never logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from kms_api.appstate import EXCHANGE
from kms_api.observe.jsonlines import EventLog, JsonFormatter, JsonLineHandler, flush_logs
from kms_api.schema.fields import is_uuid

__all__ = [
    "ACCESS_LOG",
    "AccessLogger",
    "JsonFormatter",
    "JsonLineHandler",
    "configure_logging",
    "flush_logs",
]
_INFO = logging.INFO


def configure_logging(level: str = "info") -> None:
    handler = JsonLineHandler(sys.stderr)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access logger would duplicate ours in another format.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


ACCESS_LOG = logging.getLogger("kubekms.access")
# The access line of a request is written after its reply: it may wait for the loop iteration's
# end and share a write with other lines (the audit event, written before the reply, never waits).
ACCESS_EVENTS = EventLog(ACCESS_LOG, deferred=True)


class AccessLogger(AbstractAccessLogger):
    """One line per request that wrote no audit event: reqId, method, route, keyId, identity,
    status, duration_ms. An audited request's event carries the same fields (kms_api.observe.audit), so
    every request is logged exactly once and a crypto request costs one line, not two."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(_INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        exchange = request.get(EXCHANGE)  # absent when the request never reached the app
        if exchange is not None and exchange.audited:
            return  # its audit event, written before the reply, carries these fields already
        events = ACCESS_EVENTS if self.logger is ACCESS_LOG else EventLog(self.logger, deferred=True)
        if not events.enabled:
            return
        try:
            match = getattr(request, "match_info", None)
        except AssertionError:  # a request aiohttp could not parse was never routed
            match = None
        route = None
        if match is not None and match.http_exception is None:
            resource = match.route.resource
            route = resource.canonical if resource is not None else None
        identity = exchange.identity if exchange is not None else None
        events.emit(
            "request",
            {
                "reqId": exchange.req_id if exchange is not None else None,
                "method": request.method,
                "route": route,
                "keyId": _key_id(match),
                "identity": identity.id if identity is not None else None,
                "status": response.status,
                "duration_ms": round(time * 1000, 3),
            },
        )


def _key_id(match: Any) -> str | None:
    # Only a well-formed id is logged: the path segment is client input of any length.
    value = match.get("keyId") if match is not None else None
    return value if isinstance(value, str) and is_uuid(value) else None
