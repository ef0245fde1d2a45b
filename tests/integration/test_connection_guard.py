"""The connection layer (kms_api.http.protocol) over real loopback sockets, in-process.

A small application behind the API's own request middleware, served by `api_runner` and
`GuardedListener`: the head deadline cuts off heads that trickle, also on a kept-alive connection,
but never a request that is already in the application (a slow handler); aiohttp's own answers to
malformed heads come back in the API's JSON error shape without echoing the offending bytes, and
the log never sees those bytes either.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kms_api.http.middleware import request_middleware
from kms_api.http.protocol import MAX_HEADERS, GuardedListener, api_runner

READ_TIMEOUT = 0.4
SECRET = "s3cr3t-t0ken-value"


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0")))
    return web.json_response({"ok": True})


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"length": len(await request.read())})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = web.Application(middlewares=[request_middleware(0)])
    app.router.add_get("/slow", _slow)
    app.router.add_post("/echo", _echo)
    runner = api_runner(app, access_log=None)
    await runner.setup()
    listener = GuardedListener(runner, read_timeout=READ_TIMEOUT)
    await listener.start("127.0.0.1", 0)
    try:
        yield listener.port
    finally:
        listener.stop()
        await runner.cleanup()


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return int(status_line.split()[1]), headers, body


def _assert_error_shape(status: int, headers: dict[str, str], body: bytes, error: str) -> dict[str, object]:
    assert headers["content-type"].startswith("application/json")
    parsed = json.loads(body)
    assert set(parsed) == {"reqId", "statusCode", "message", "error"}
    assert parsed["statusCode"] == status and parsed["error"] == error
    assert headers["x-request-id"] == parsed["reqId"]
    return dict(parsed)


async def test_a_trickling_head_is_cut_off_with_408(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):  # progress, but never the end of the head
        await asyncio.sleep(0.1)
        writer.write(b"X-Slow: 1\r\n")
    status, headers, body = await _read_reply(reader)
    elapsed = asyncio.get_running_loop().time() - started
    assert status == 408 and headers["connection"] == "close"
    _assert_error_shape(status, headers, body, "RequestTimeout")
    assert READ_TIMEOUT <= elapsed < READ_TIMEOUT * 1.25 + 0.3, elapsed
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_slow_handler_is_not_a_slow_head(port: int) -> None:
    """A request in the application for longer than the read timeout still gets its answer; the
    next head on the kept-alive connection has a deadline of its own."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /slow?s={READ_TIMEOUT * 3} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, _, body = await _read_reply(reader)
    assert status == 200 and json.loads(body) == {"ok": True}
    await asyncio.sleep(READ_TIMEOUT / 2)  # idle, within the deadline
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _read_reply(reader))[0] == 200
    writer.write(b"GET /slow HTTP/1.1\r\n")  # a third head that never ends
    status, headers, body = await _read_reply(reader)
    _assert_error_shape(status, headers, body, "RequestTimeout")
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, headers, body = await _read_reply(reader)
    _assert_error_shape(status, headers, body, "RequestTimeout")
    writer.close()


@pytest.mark.parametrize(
    ("head", "status", "error"),
    [
        (b"GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode() * 600 + b"\r\n\r\n",
         431, "RequestHeaderFieldsTooLarge"),
        (b"GET /slow HTTP/1.1\r\nHost: x\r\nX-T: " + SECRET.encode() + b"\r\n"
         + b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 5)) + b"\r\n",
         431, "RequestHeaderFieldsTooLarge"),
        (b"GET /slow HTTP/9.9\r\nHost: x\r\nX-T: " + SECRET.encode() + b"\r\n\r\n", 400, "BadRequest"),
        (b"GET /slow HTTP/1.1\r\nHost: x\r\n" + SECRET.encode() + b"\r\n\r\n", 400, "BadRequest"),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400,
         "BadRequest"),
    ],
    ids=["long-header", "many-headers", "bad-version", "no-colon", "duplicate-length"],
)  # fmt: skip
async def test_malformed_heads_get_json_errors_without_their_bytes(
    port: int, head: bytes, status: int, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    got, headers, body = await _read_reply(reader)
    assert got == status, body
    _assert_error_shape(got, headers, body, error)
    assert SECRET.encode() not in body and SECRET not in str(headers)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # and the connection is closed
    writer.close()
    await asyncio.sleep(0.05)
    logged = "\n".join(f"{r.getMessage()} {r.exc_info!r} {vars(r)!r}" for r in caplog.records)
    assert SECRET not in logged
    assert any(r.getMessage() == "protocol error" for r in caplog.records)


async def test_the_application_still_serves_bodies_after_the_guard(port: int) -> None:
    """Bodies, keep-alive and pipelining pass through the guard unchanged."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    one = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    writer.write(one + one)  # two pipelined requests in one write
    for _ in range(2):
        status, _, body = await _read_reply(reader)
        assert status == 200 and json.loads(body) == {"length": 5}
    writer.close()
