"""The HTTP connection layer: header limits, a request-head deadline, and JSON protocol errors.

aiohttp parses requests before any middleware runs, so its own answers (malformed request line,
too many or too long headers, broken framing) would be plain text that quotes the offending
bytes, and it has no deadline for a request head that trickles in. This layer adds both using
public interfaces only, so it keeps working across aiohttp 3.x releases:

- `web.AppRunner` gets the header limits and `keepalive_timeout` as its documented keyword
  arguments, and `runner.server` (a `web.Server`, documented as an asyncio protocol factory) is
  served by `asyncio.loop.create_server` through `GuardedListener`, which wraps every connection's
  protocol in a `ConnectionGuard`.
- The guard times the head: its clock starts with the first byte of a head and stops when the
  request enters the application (`request_started`, called by the request middleware). A
  sweeper answers 408 and closes connections whose head is older than the read timeout.
- Replies leave after their audit events: while audit lines are held
  (`kms_api.observe.jsonlines.release_held`), reply bytes are queued on their connection and sent
  by the listener's `Outbox` at the event loop's next turn, right after one write of every held
  line. So all the requests one loop iteration served cost one log write, and no reply byte
  reaches a socket before its request's audit event was written.
- aiohttp's own error answers are recognised on the way out (a 4xx/5xx `text/plain` response:
  every response of the application itself is JSON) and replaced by the API's
  `{reqId, statusCode, message, error}` body; aiohttp's log record of a client's parse error is
  dropped in favour of one line without the offending bytes.

Security property: a client can hold a connection only while it makes progress: the head must
arrive within `read_timeout`, the body within `read_timeout` (body.py), and an idle keep-alive
connection is closed after KEEPALIVE_TIMEOUT; header count and sizes are bounded before parsing
goes further. Error texts are fixed, never echoing the offending bytes (which may be a token).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any, Final, cast

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kms_api.http.error_replies import HEADER, error_body, new_request_id
from kms_api.observe.jsonlines import lines_held, release_held
from kms_core.listener import dual_stack_socket, is_any

__all__ = [
    "KEEPALIVE_TIMEOUT",
    "MAX_FIELD_SIZE",
    "MAX_HEADERS",
    "MAX_LINE_SIZE",
    "ConnectionGuard",
    "GuardedListener",
    "Outbox",
    "api_runner",
    "list_as_get",
    "request_finished",
    "request_started",
]

log = logging.getLogger("kubekms.api")
# aiohttp's connection handlers log through this logger (the `logger` argument of web.Server).
SERVER_LOG = logging.getLogger("kubekms.api.connection")

MAX_LINE_SIZE: Final = 8190  # request line (URL) and each header line
MAX_FIELD_SIZE: Final = 8190  # one header value
MAX_HEADERS: Final = 100
KEEPALIVE_TIMEOUT: Final = 75.0

_STATUS_TEXT: Final = {
    400: ("Bad Request", "Malformed HTTP request", "BadRequest"),
    408: ("Request Timeout", "The request head was not received in time", "RequestTimeout"),
    431: (
        "Request Header Fields Too Large",
        "Request header fields are too large or too many",
        "RequestHeaderFieldsTooLarge",
    ),
    500: ("Internal Server Error", "Something went wrong", "InternalServerError"),
    504: ("Gateway Timeout", "The request timed out", "GatewayTimeout"),
}
# aiohttp's texts for a head over the limits (LineTooLong, "Too many headers"): only the prefix
# is compared, the rest quotes client bytes.
_TOO_LARGE: Final = (b"Got more than", b"Too many headers")
_ERROR_CLASSES: Final = (ord("4"), ord("5"))  # the status class digit of "HTTP/1.1 404 ..."


def _error_reply(status: int) -> tuple[str, bytes]:
    """A complete HTTP/1.1 reply in the API's error shape that closes the connection."""
    reason, message, error = _STATUS_TEXT[status]
    req_id = new_request_id()
    body = orjson.dumps(error_body(req_id, status, message, error))
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{HEADER}: {req_id}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return req_id, head + body


def _classify(status: int, body: bytes) -> int:
    """The API's status for aiohttp's own error answer (its body is read, never echoed)."""
    if status >= 500:
        return 504 if status == 504 else 500
    return 431 if body.startswith(_TOO_LARGE) else 400


class _DropParseErrors(logging.Filter):
    """aiohttp logs a client's parse error with its message, which quotes the offending line (an
    Authorization header, say); the guard logs one line without it instead. Other records (a
    handler crash outside the middlewares: our own fault) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HttpProcessingError)


SERVER_LOG.addFilter(_DropParseErrors())


class _ErrorRewrite:
    """aiohttp's plain-text error answer, collected until complete, then replaced by JSON."""

    __slots__ = ("buffer", "head_end", "length", "status")

    def __init__(self, first: bytes, status: int, head_end: int, length: int) -> None:
        self.buffer = bytearray(first)
        self.status = status
        self.head_end = head_end
        self.length = length

    def complete(self) -> bool:
        return len(self.buffer) >= self.head_end + self.length

    def reply(self) -> tuple[int, str, bytes]:
        body = bytes(self.buffer[self.head_end : self.head_end + self.length])
        status = _classify(self.status, body)
        req_id, data = _error_reply(status)
        return status, req_id, data


def _aiohttp_error_answer(data: bytes | bytearray | memoryview) -> _ErrorRewrite | None:
    """The rewrite for `data` if it starts aiohttp's own error answer, else None.

    Cheap on the hot path: one 12-byte slice per response write."""
    start = bytes(data[:12])
    if not start.startswith(b"HTTP/1.") or start[9:10] not in (b"4", b"5"):
        return None
    raw = bytes(data)
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = raw[:head_end].lower()
    if b"\r\ncontent-type: text/plain" not in head:
        return None  # the application's own answers are JSON
    length = 0
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line[15:].strip() or b"0")
    return _ErrorRewrite(raw, int(start[9:12]), head_end + 4, length)


class Outbox:
    """Replies queued while audit lines are held, sent at the event loop's next turn: first one
    write of every held line (`release_held`), then each connection's queued bytes in order."""

    __slots__ = ("_loop", "_queue", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: list[_GuardedTransport] = []
        self._scheduled = False

    def add(self, transport: _GuardedTransport) -> None:
        self._queue.append(transport)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.send)

    def send(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        release_held()
        for transport in queue:
            transport.send_queued()


class _GuardedTransport(asyncio.Transport):
    """The transport aiohttp's handler writes to: the connection's own, with aiohttp's
    plain-text error answers replaced by JSON ones, and replies queued behind held audit lines."""

    __slots__ = ("_guard", "_outbox", "_queued", "_rewrite", "_swallow", "_transport")

    def __init__(self, transport: asyncio.Transport, guard: ConnectionGuard, outbox: Outbox) -> None:
        super().__init__()
        self._transport = transport
        self._guard = guard
        self._outbox = outbox
        self._queued: list[bytes] | None = None  # reply bytes waiting for the outbox, in order
        self._rewrite: _ErrorRewrite | None = None
        self._swallow = False  # after a rewritten answer: the connection is closing

    @property
    def guard(self) -> ConnectionGuard:
        return self._guard

    def _send(self, chunks: list[bytes | bytearray | memoryview]) -> None:
        """Pass reply bytes on, or queue them while audit lines are held (or bytes are queued)."""
        if self._queued is None:
            if not lines_held():
                self._transport.writelines(chunks)
                return
            self._queued = []
            self._outbox.add(self)
        # Copies: aiohttp may reuse a bytearray or memoryview once write() returns.
        self._queued.extend(bytes(c) for c in chunks)

    def send_queued(self) -> None:
        """Send the queued bytes (held lines were released first: by the outbox or `close`)."""
        queued, self._queued = self._queued, None
        if queued and not self._transport.is_closing():
            self._transport.writelines(queued)

    def _drain_queue(self) -> None:
        if self._queued is not None:
            release_held()
            self.send_queued()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._swallow:
            return
        if self._rewrite is None:
            # Fast path: anything but a 4xx/5xx status line is passed on after one slice.
            rewrite = _aiohttp_error_answer(data) if len(data) > 9 and data[9] in _ERROR_CLASSES else None
            if rewrite is None:
                self._send([data])
                return
            self._rewrite = rewrite
        else:
            self._rewrite.buffer += data
        if self._rewrite.complete():
            self._send_rewrite()

    def writelines(self, list_of_data: Any) -> None:
        # aiohttp sends a response's head and body in one writelines call: keep it one call (one
        # send on the socket), unless it may be one of aiohttp's own error answers to rewrite.
        chunks = list(list_of_data)
        if not self._swallow and self._rewrite is None and chunks:
            first = chunks[0]
            if not (len(first) > 9 and first[9] in _ERROR_CLASSES):
                self._send(chunks)
                return
        for data in chunks:
            self.write(data)

    def _send_rewrite(self) -> None:
        rewrite, self._rewrite, self._swallow = self._rewrite, None, True
        assert rewrite is not None
        status, req_id, data = rewrite.reply()
        extra = {"reqId": req_id, "status": status}
        if status >= 500:
            log.error("unhandled error outside the middlewares", extra=extra)
        else:
            log.info("protocol error", extra=extra)
        self._drain_queue()  # an earlier reply of this connection goes first
        self._transport.write(data)
        self._transport.close()

    def close(self) -> None:
        if self._rewrite is not None:
            self._send_rewrite()
        self._drain_queue()  # a closing connection still sends its last reply (after its event)
        self._transport.close()

    def abort(self) -> None:
        self._queued = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._swallow or self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        queued = sum(len(c) for c in self._queued) if self._queued else 0
        return self._transport.get_write_buffer_size() + queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def write_eof(self) -> None:
        self._drain_queue()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


_LIST: Final = b"LIST /v1/"


def list_as_get(data: bytes) -> bytes:
    """Vault's `LIST` method read as `GET ...?list=true`, Vault's own equivalence for list
    operations (aiohttp's HTTP parser refuses methods it does not know). Only for the Transit
    dialect's paths (`/v1/`) at the start of a chunk: a request head (the chunk that ends a
    body the application did not read is no head, but the API's bodies are JSON, which never
    starts with `LIST `); anything else is untouched."""
    if not data.startswith(_LIST):
        return data
    line_end = data.find(b" ", 5)
    if line_end < 0:
        return data
    target = data[5:line_end]
    joiner = b"&" if b"?" in target else b"?"
    return b"GET " + target + joiner + b"list=true" + data[line_end:]


class ConnectionGuard(asyncio.Protocol):
    """One connection: aiohttp's handler inside, the head clock and the error rewrite around it.

    `head_since` is the loop time when the head now awaited began, or None when none is awaited
    (a request is in the application, or nothing has been sent since the last one)."""

    __slots__ = ("_inner", "_listener", "_time", "_transport", "active", "head_since")

    def __init__(self, inner: asyncio.Protocol, listener: GuardedListener) -> None:
        self._inner = inner
        self._listener = listener
        self._time = listener.loop.time
        self._transport: asyncio.Transport | None = None
        self.head_since: float | None = None
        self.active = 0  # requests of this connection inside the application

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self.head_since = self._time()  # a connection that sends nothing is a head that never ends
        self._listener.opened(self)
        self._inner.connection_made(_GuardedTransport(transport, self, self._listener.outbox))

    def data_received(self, data: bytes) -> None:
        if self.head_since is None and not self.active:
            self.head_since = self._time()  # the first bytes of a new head on a kept-alive connection
        if data[:1] == b"L":  # one byte compared on the hot path
            data = list_as_get(data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_since = None
        self._listener.closed(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def head_overdue(self, now: float, read_timeout: float) -> bool:
        return self.head_since is not None and now - self.head_since >= read_timeout

    def head_expired(self) -> None:
        """Answer 408 and close: the head did not arrive within the read timeout."""
        self.head_since = None
        transport = self._transport
        if transport is None or transport.is_closing() or self.active:
            return
        req_id, data = _error_reply(408)
        log.info("request head timed out", extra={"reqId": req_id, "status": 408})
        transport.write(data)
        transport.close()


def request_started(request: web.BaseRequest) -> ConnectionGuard | None:
    """Stop the head clock of `request`'s connection: its head is complete and the request is in
    the application. The guard to hand to `request_finished`, or None when not served through a
    `GuardedListener` (the aiohttp test client, say)."""
    transport = request.transport
    if not isinstance(transport, _GuardedTransport):
        return None
    guard = transport.guard
    guard.active += 1
    guard.head_since = None
    return guard


def request_finished(guard: ConnectionGuard | None) -> None:
    """The request has left the application: bytes after this start the next head."""
    if guard is not None:
        guard.active -= 1


class GuardedListener:
    """A listening socket serving `runner.server` through ConnectionGuards, with one head-deadline
    sweeper. The sweeper runs every quarter of the read timeout (at most every second) while there
    are connections, so a head is cut off between 1 and 1.25 read timeouts after it began."""

    def __init__(self, runner: web.BaseRunner, *, read_timeout: float) -> None:
        if runner.server is None:
            raise RuntimeError("call runner.setup() before making a listener")
        self._server = runner.server
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox(self.loop)
        self._read_timeout = read_timeout
        self._sweep_every = min(1.0, read_timeout / 4)
        self._sweeper: asyncio.TimerHandle | None = None
        self._guards: set[ConnectionGuard] = set()
        self._listening: asyncio.Server | None = None

    def _protocol(self) -> ConnectionGuard:
        return ConnectionGuard(self._server(), self)

    async def start(
        self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None, reuse_port: bool = False
    ) -> None:
        """Listen on `host:port`; `::` (the default) on one dual-stack socket (kms_core.listener),
        since asyncio would make it IPv6-only."""
        if is_any(host):
            sock = dual_stack_socket(port, reuse_port=reuse_port)
            self._listening = await self.loop.create_server(self._protocol, sock=sock, ssl=ssl_context)
            return
        self._listening = await self.loop.create_server(
            self._protocol, host, port, ssl=ssl_context, backlog=128, reuse_port=reuse_port or None
        )

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._listening.sockets) if self._listening is not None else ()

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Stop accepting; open connections are left to the runner's graceful shutdown."""
        if self._listening is not None:
            self._listening.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def opened(self, guard: ConnectionGuard) -> None:
        self._guards.add(guard)
        if self._sweeper is None and self._listening is not None and self._listening.is_serving():
            self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)

    def closed(self, guard: ConnectionGuard) -> None:
        self._guards.discard(guard)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.loop.time()
        for guard in list(self._guards):
            if guard.head_overdue(now, self._read_timeout):
                guard.head_expired()
        if self._guards and self._listening is not None and self._listening.is_serving():
            self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)


def api_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """`web.AppRunner` with the API's header limits, idle timeout and connection logger; serve it
    with `GuardedListener`."""
    kwargs.setdefault("max_line_size", MAX_LINE_SIZE)
    kwargs.setdefault("max_field_size", MAX_FIELD_SIZE)
    kwargs.setdefault("max_headers", MAX_HEADERS)
    kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
    kwargs.setdefault("logger", SERVER_LOG)
    return web.AppRunner(app, **kwargs)
