"""Structured JSON logs, one object per line, and the access log line of every request.

Security property: the access line is built from an allow-list (reqId, method, route template,
key id from the path, identity id, status, duration); bodies, query strings, headers and tokens
are never logged.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from kms_api.appkeys import IDENTITY, REQ_ID
from kms_api.fields import is_uuid

# Attributes every LogRecord has; anything else was passed with `extra=` and is emitted as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access logger would duplicate ours in another format.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """One line per request: reqId, method, route, keyId, identity, status, duration_ms."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            match = getattr(request, "match_info", None)
        except AssertionError:  # a request aiohttp could not parse was never routed
            match = None
        route = None
        if match is not None and match.http_exception is None:
            resource = match.route.resource
            route = resource.canonical if resource is not None else None
        identity = request.get(IDENTITY)
        self.logger.info(
            "request",
            extra={
                "reqId": request.get(REQ_ID),
                "method": request.method,
                "route": route,
                "keyId": _key_id(match),
                "identity": identity.id if identity is not None else None,
                "status": response.status,
                "duration_ms": round(time * 1000, 3),
            },
        )


ACCESS_LOG = logging.getLogger("kubekms.access")


def _key_id(match: Any) -> str | None:
    # Only a well-formed id is logged: the path segment is client input of any length.
    value = match.get("keyId") if match is not None else None
    return value if isinstance(value, str) and is_uuid(value) else None
