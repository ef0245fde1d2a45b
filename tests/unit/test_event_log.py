"""The record-free log path writes exactly the lines `logging` would, in logging order.

`EventLog` (access line, audit event) bypasses LogRecords only when the process's
`JsonLineHandler` is the sole listener; these tests compare its lines with the formatter's, check
that deferred access lines keep their order and reach the stream by the end of the loop
iteration, and that any other listener (here a list handler, in the suite pytest's caplog) gets
ordinary records carrying the same fields.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from kms_api.observe.jsonlines import EventLog, JsonLineHandler, flush_logs
from kms_api.observe.logs import configure_logging

FIELDS = {"reqId": "req-1", "status": 200, "keyId": None, "metadata": {"macValid": True}}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    # A logger tree of its own whose only handler is a JsonLineHandler, as configure_logging sets
    # up the root logger in a process. Capture plugins attach their handlers when the test body
    # starts, so `_solo` is called again there.
    out = io.StringIO()
    tree = logging.getLogger("kubekms.test")
    tree.propagate = False
    tree.setLevel(logging.INFO)
    _solo(out)
    try:
        yield out
    finally:
        tree.handlers[:] = []
        tree.propagate = True
        tree.setLevel(logging.NOTSET)


def _solo(out: io.StringIO) -> None:
    tree = logging.getLogger("kubekms.test")
    if not (len(tree.handlers) == 1 and getattr(tree.handlers[0], "stream", None) is out):
        tree.handlers[:] = [JsonLineHandler(out)]


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_fast_lines_match_the_formatters_lines(stream: io.StringIO) -> None:
    _solo(stream)
    logger = logging.getLogger("kubekms.test.events")
    EventLog(logger).emit("audit", dict(FIELDS))
    logger.info("audit", extra=dict(FIELDS))  # the ordinary path, through JsonFormatter
    fast, slow = _lines(stream)
    assert list(fast) == list(slow)  # same fields, same order
    for entry in (fast, slow):
        assert entry["time"].endswith("+00:00") and len(entry["time"]) == len("2026-01-01T00:00:00.000+00:00")
    assert {k: v for k, v in fast.items() if k != "time"} == {k: v for k, v in slow.items() if k != "time"}


def test_an_events_own_time_is_kept(stream: io.StringIO) -> None:
    _solo(stream)
    EventLog(logging.getLogger("kubekms.test.events")).emit("audit", {"time": "T", **FIELDS})
    assert _lines(stream)[0]["time"] == "T"


async def test_deferred_lines_keep_their_order_and_leave_with_the_iteration(stream: io.StringIO) -> None:
    _solo(stream)
    access = EventLog(logging.getLogger("kubekms.test.access"), deferred=True)
    audit = EventLog(logging.getLogger("kubekms.test.audit"))
    access.emit("request", {"n": 1})
    assert stream.getvalue() == ""  # waiting for the loop iteration to end
    audit.emit("audit", {"n": 2})  # a non-deferred line takes the waiting one along, first
    assert [e["n"] for e in _lines(stream)] == [1, 2]
    access.emit("request", {"n": 3})
    logging.getLogger("kubekms.test.other").warning("ordinary", extra={"n": 4})
    access.emit("request", {"n": 5})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [e["n"] for e in _lines(stream)] == [1, 2, 3, 4, 5]


def test_deferred_lines_without_a_loop_are_written_at_once(stream: io.StringIO) -> None:
    _solo(stream)
    EventLog(logging.getLogger("kubekms.test.access"), deferred=True).emit("request", {"n": 1})
    assert [e["n"] for e in _lines(stream)] == [1]


async def test_flushing_the_handler_writes_waiting_lines(stream: io.StringIO) -> None:
    _solo(stream)
    EventLog(logging.getLogger("kubekms.test.access"), deferred=True).emit("request", {"n": 1})
    assert stream.getvalue() == ""
    logging.getLogger("kubekms.test").handlers[0].flush()
    assert [e["n"] for e in _lines(stream)] == [1]


def test_configure_logging_installs_the_json_line_handler() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("warning")
        assert [type(h) for h in root.handlers] == [JsonLineHandler] and root.level == logging.WARNING
        flush_logs()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_another_listener_gets_ordinary_records(stream: io.StringIO) -> None:
    _solo(stream)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("kubekms.test.listened")
    extra = Collect()
    logger.addHandler(extra)
    try:
        EventLog(logger).emit("audit", dict(FIELDS))
    finally:
        logger.removeHandler(extra)
    assert len(records) == 1 and records[0].reqId == "req-1" and records[0].metadata == {"macValid": True}  # type: ignore[attr-defined]
    assert _lines(stream)[0]["reqId"] == "req-1"  # the process's handler still got its line


def test_disabled_level_writes_nothing(stream: io.StringIO) -> None:
    _solo(stream)
    logger = logging.getLogger("kubekms.test.quiet")
    logger.setLevel(logging.WARNING)
    try:
        events = EventLog(logger)
        assert not events.enabled
        events.emit("audit", dict(FIELDS))
    finally:
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
