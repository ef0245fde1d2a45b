"""Cross-origin requests from browsers, opt-in: an allow-list of origins (`--cors-origins`).

Infisical serves CORS with credentials for its configured origins (`@fastify/cors`); KubeKMS does
the same for the origins it is given and nothing by default. A preflight (`OPTIONS` with `Origin`
and `Access-Control-Request-Method`) from an allowed origin is answered 204 with the methods and
the requested headers, before routing and authentication (browsers send no credentials on a
preflight); every other response to an allowed origin carries `Access-Control-Allow-Origin` (that
origin, never `*`) and `Access-Control-Allow-Credentials: true`.

Security property: an origin not on the list gets no CORS header at all, so the browser keeps
the response from its page, and its preflight falls through to the usual 404. Only the
preflight is answered without a token; every real request is authenticated and limited as
without CORS. Origins are compared exactly, after normalising the configured ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from kms_core.errors import ConfigError

# @fastify/cors's default method list.
METHODS: Final = "GET,HEAD,PUT,PATCH,POST,DELETE"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def parse_origins(text: str) -> tuple[str, ...]:
    """`https://a.example, http://localhost:3000` -> normalised origins; ConfigError on anything
    that is not `scheme://host[:port]` (no `*`, no path: a wildcard with credentials would let
    every web page use a signed-in browser's access)."""
    origins: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        bad = ConfigError(f"--cors-origins takes origins like https://app.example.com[:port], not {item!r}")
        try:
            parts = urlsplit(item)
            port = parts.port
        except ValueError:
            raise bad from None
        if (
            parts.scheme not in _DEFAULT_PORTS
            or not parts.hostname
            or "*" in item
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise bad
        # What a browser sends: lower-case scheme and host, no default port, no trailing slash.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        suffix = "" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}"
        origins.append(f"{parts.scheme}://{host}{suffix}")
    return tuple(dict.fromkeys(origins))


class Cors:
    """The middleware (preflights) and the response hook (headers) for one allow-list."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)

    def allowed(self, request: web.BaseRequest) -> str | None:
        origin = request.headers.get(hdrs.ORIGIN)
        return origin if origin in self.origins else None

    @web.middleware
    async def preflight(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method == hdrs.METH_OPTIONS
            and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            and self.allowed(request) is not None
        ):
            headers = {hdrs.ACCESS_CONTROL_ALLOW_METHODS: METHODS}
            requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
            if requested:  # as @fastify/cors without allowedHeaders: the requested ones
                headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
            return web.Response(status=204, headers=headers)
        return await handler(request)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # Vary on every response: a cache must not hand one origin's answer to another.
        response.headers.add(hdrs.VARY, "Origin")
        origin = self.allowed(request)
        if origin is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"


def install(app: web.Application, origins: Iterable[str]) -> None:
    """Serve CORS for `origins` on `app`; nothing is installed for an empty list."""
    cors = Cors(origins)
    if not cors.origins:
        return
    app.middlewares.append(cors.preflight)
    app.on_response_prepare.append(cors.on_response_prepare)
