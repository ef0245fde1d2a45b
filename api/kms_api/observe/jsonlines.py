"""JSON log lines, one object per line: the formatter, the process's handler, and `EventLog`.

Two paths produce the same line. Ordinary log calls go through `logging` and `JsonFormatter`.
The per-request events (the access line in `kms_api.observe.logs`, the audit event in `kms_api.observe.audit`)
go through `EventLog`, which writes the line straight to the `JsonLineHandler` when that handler
is the only one listening (the production set-up of `configure_logging`): no LogRecord, no
caller lookup, one `orjson.dumps`. When anything else listens (pytest's caplog, an embedding
application's handlers), `EventLog` falls back to an ordinary `logger.info(..., extra=fields)`
record carrying the same fields, so nothing is ever lost or reshaped.

Lines are built as bytes by orjson and written straight to the stream's file descriptor when it
has one (one `write` system call, no text layer), else through the stream.

Audit events are *held*: written, together with every other line the event loop's current
iteration produced, in one write that happens before any reply leaves. `release_held` is that
write; the connection layer (`kms_api.http.protocol`) calls it before handing reply bytes to
the socket, and a callback at the iteration's end calls it in case no reply follows. So an
answered request's event always reached the log before its reply's first byte was sent.

Security property: this module writes what callers hand it; the callers build their fields from
allow-lists (see `kms_api.observe.logs` and `kms_api.observe.audit`), never from request bodies or headers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_INFO = logging.INFO


class _Clock:
    """ISO-8601 UTC timestamps with milliseconds, as `datetime.isoformat(timespec="milliseconds")`.

    The date-and-seconds prefix is formatted once per second; each call only appends milliseconds."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{int((moment - second) * 1000):03d}+00:00"


CLOCK = _Clock()

# getpid() is a system call; the value only changes in a forked child (--workers).
_PID = os.getpid()


def _refresh_pid() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


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


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's log handler: JSON lines on a stream, plus a record-free fast path.

    Deferred lines (the access line, written after its reply is sent) and held lines (the audit
    event, which must be written before its reply is sent) wait in memory until the next
    ordinary line is written, a reply is about to be sent (`release_held`), or the event loop
    finishes its current iteration, whichever comes first, and then go out in one write: under
    load, one system call for all the requests the iteration served. Lines always reach the
    stream in the order they were logged."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.setFormatter(JsonFormatter())
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self._fd = _file_descriptor(self.stream)

    def setStream(self, stream: Any) -> Any:  # logging.StreamHandler's name
        with self.lock:  # type: ignore[union-attr]
            self._flush_pending_locked()
            previous = super().setStream(stream)
            self._fd = _file_descriptor(self.stream)
        return previous

    def write_entry(self, entry: dict[str, Any], *, deferred: bool = False, held: bool = False) -> None:
        """Write one already-built entry as a line (what `emit` would write for its record).

        `deferred`: may wait until after the reply. `held`: may wait, but never past the moment a
        reply is sent (see `release_held`); only for lines of requests whose replies go through
        the connection layer that calls it. Otherwise the line is written before this returns."""
        line = orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE)
        with self.lock:  # type: ignore[union-attr]
            if (deferred or held) and self._defer(line, held):
                return
            if self._pending:
                line = b"".join(self._pending) + line
                self._pending.clear()
            self._write(line, entry.get("message"))

    def _defer(self, line: bytes, held: bool) -> bool:
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return False  # no event loop in this thread: nothing would flush it later
            loop.call_soon(self.flush_pending)
            self._flush_scheduled = True
        self._pending.append(line)
        if held:
            _HOLDERS.add(self)
        return True

    def flush_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._flush_scheduled = False
            self._flush_pending_locked()

    def _flush_pending_locked(self) -> None:
        _HOLDERS.discard(self)
        if self._pending:
            lines = b"".join(self._pending)
            self._pending.clear()
            self._write(lines, "request")

    def _write(self, data: bytes, message: Any) -> None:
        try:
            if self._fd is None:
                self.stream.write(data.decode())
                self.stream.flush()
                return
            self.stream.flush()  # text someone else wrote to the stream goes first
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": message}))

    def emit(self, record: logging.LogRecord) -> None:
        self.flush_pending()  # keep the stream in logging order
        super().emit(record)

    def flush(self) -> None:
        self.flush_pending()
        super().flush()


def _file_descriptor(stream: Any) -> int | None:
    """The descriptor behind a text stream (stderr, a log file), or None (an in-memory stream)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


# The handlers holding lines that must be written before the next reply is sent.
_HOLDERS: set[JsonLineHandler] = set()


def release_held() -> None:
    """Write every held line now (with the lines waiting before them). Called by the connection
    layer before reply bytes reach a socket: a reply never leaves before its audit event."""
    for holder in list(_HOLDERS):
        holder.flush_pending()


def lines_held() -> bool:
    """Whether a line is waiting for `release_held`."""
    return bool(_HOLDERS)


def _sole_json_handler(logger: logging.Logger) -> JsonLineHandler | None:
    """The handler a record from `logger` would reach, when it is exactly one JsonLineHandler
    without filters that accepts INFO; None in any other configuration (the fallback is exact)."""
    if logger.filters or logger.disabled:
        return None
    found: JsonLineHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or type(handler) is not JsonLineHandler:
                return None
            if handler.filters or handler.level > _INFO:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


class EventLog:
    """INFO events of one logger as JSON lines: the per-request fast path (see module docstring)."""

    __slots__ = ("deferred", "held", "logger")

    def __init__(self, logger: logging.Logger, *, deferred: bool = False, held: bool = False) -> None:
        self.logger = logger
        self.deferred = deferred  # may wait for the loop iteration's end (see JsonLineHandler)
        self.held = held  # may wait until the next reply is sent (see release_held)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(_INFO)

    def emit(self, message: str, fields: dict[str, Any], *, before_reply: bool = False) -> None:
        """Log `message` with `fields` at INFO. Callers check `enabled` first to skip building
        `fields` when INFO is off; this checks again so a stray call is still correct.
        `before_reply`: the line may be held until the reply is sent (only when `held`)."""
        logger = self.logger
        if not logger.isEnabledFor(_INFO):
            return
        handler = _sole_json_handler(logger)
        if handler is None:
            logger.info(message, extra=fields)
            return
        entry: dict[str, Any] = {
            "time": fields.get("time") or CLOCK.now(),  # an event may carry its own (the audit event)
            "level": "info",
            "logger": logger.name,
            "pid": _PID,
            "message": message,
        }
        entry.update(fields)
        handler.write_entry(entry, deferred=self.deferred, held=self.held and before_reply)


def flush_logs() -> None:
    """Write out every handler's waiting lines (before a worker exits through os._exit)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
