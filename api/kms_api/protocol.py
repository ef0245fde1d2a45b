"""The HTTP connection layer: header limits, a request-head deadline, and JSON protocol errors.

aiohttp parses requests before any middleware runs, so its own answers (malformed request line,
too many or too long headers, a client that never finishes its headers) would be plain text.
This layer keeps every answer in the API's `{reqId, statusCode, message, error}` shape and
closes connections whose request head is not complete within the read timeout (slow-loris).

Security property: a client can hold a connection only while it makes progress: the head must
arrive within `read_timeout`, the body within `read_timeout` (body.py), and an idle keep-alive
connection is closed after KEEPALIVE_TIMEOUT; header count and sizes are bounded before parsing
goes further. Error texts are fixed, never echoing the offending bytes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from kms_api.dispatch import DirectDispatch
from kms_api.errors import HEADER, error_body, new_request_id

log = logging.getLogger("kubekms.api")

MAX_LINE_SIZE: Final = 8190  # request line (URL) and each header line
MAX_FIELD_SIZE: Final = 8190  # one header value
MAX_HEADERS: Final = 100
KEEPALIVE_TIMEOUT: Final = 75.0


def _json_error(status: int, message: str, error: str) -> tuple[str, bytes]:
    req_id = new_request_id()
    return req_id, orjson.dumps(error_body(req_id, status, message, error))


def _classify(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    if isinstance(exc, LineTooLong) or (isinstance(exc, BadHttpMessage) and "headers" in str(exc)):
        return 431, "Request header fields are too large or too many", "RequestHeaderFieldsTooLarge"
    if status == 500:
        return 500, "Something went wrong", "InternalServerError"
    if status == 504:
        return 504, "The request timed out", "GatewayTimeout"
    return 400, "Malformed HTTP request", "BadRequest"


class GuardedRequestHandler(RequestHandler):
    """aiohttp's per-connection handler plus a request-head deadline and JSON error bodies."""

    def __init__(self, manager: Any, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._read_timeout = read_timeout
        # When the head now awaited began (loop time), or None when no head is awaited. The
        # server's sweeper enforces the deadline: a timer per request cost a heap push and a
        # cancel on every request.
        self.head_since: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.head_since = self._loop.time()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.head_since = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self.head_since = None  # a complete head arrived; the body has its own deadline
        elif self.head_since is None:
            self.head_since = self._loop.time()  # the first bytes of a new head on a kept-alive connection

    def head_overdue(self, now: float) -> bool:
        return self.head_since is not None and now - self.head_since >= self._read_timeout

    def head_expired(self) -> None:
        """Answer 408 and close: the head did not arrive within the read timeout."""
        self.head_since = None
        transport = self.transport
        if transport is None or transport.is_closing() or self._request_in_progress:
            return
        req_id, body = _json_error(408, "The request head was not received in time", "RequestTimeout")
        head = (
            f"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n{HEADER}: {req_id}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        transport.write(head + body)
        self.force_close()
        transport.close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Protocol-level failures (parse errors, handler crashes outside middlewares) as JSON.

        Unlike aiohttp's version, the exception text is not logged: a parse error quotes the
        offending line, which may be an Authorization header."""
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response")
        status, text, error = _classify(status, exc)
        req_id, body = _json_error(status, text, error)
        extra = {"reqId": req_id, "status": status, "kind": type(exc).__name__}
        if status == 500:  # our own fault (never client bytes): keep the traceback
            log.error("unhandled error outside the middlewares", extra=extra, exc_info=exc)
        else:
            log.info("protocol error", extra=extra)
        response = web.Response(
            body=body, status=status, content_type="application/json", headers={HEADER: req_id}
        )
        response.force_close()
        return response


class GuardedServer(web.Server):
    """`web.Server` whose connections use GuardedRequestHandler, with one head-deadline sweeper.

    The sweeper runs every quarter of the read timeout (at most every second) while there are
    connections, so a head is cut off between 1 and 1.25 read timeouts after it began."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout
        self._sweep_every = min(1.0, read_timeout / 4)
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, read_timeout=self._read_timeout, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self._loop.time()
        for handler in list(self._connections):
            if isinstance(handler, GuardedRequestHandler) and handler.head_overdue(now):
                handler.head_expired()
        if self._connections:
            self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def pre_shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        super().pre_shutdown()


class GuardedAppRunner(web.AppRunner):
    """`web.AppRunner` serving through GuardedServer with the API's header limits."""

    def __init__(self, app: web.Application, *, read_timeout: float, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_LINE_SIZE)
        kwargs.setdefault("max_field_size", MAX_FIELD_SIZE)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
        super().__init__(app, **kwargs)
        self._read_timeout = read_timeout

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's startup and freezes it
        return GuardedServer(
            DirectDispatch(self.app, plain.request_handler),
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            read_timeout=self._read_timeout,
            **self._kwargs,
        )
