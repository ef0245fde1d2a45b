"""The bare-aiohttp baseline: what this machine serves for a KMS-shaped request with no KMS work.

It runs with the API's server settings (uvloop, orjson, SO_REUSEPORT workers, one JSON access-log
line per request, a request id header) and does only what any JSON endpoint must: check that a
bearer token is present, parse the JSON body, and answer with a JSON body of the size the real
API would send (the load script passes that size in `X-Bench-Reply-Bytes`). Requests/s of the API
divided by this server's requests/s, measured in the same run, is the headline ratio.

Security property: none needed (no keys, no secrets); it never logs bodies or headers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_EMPTY_REPLY = len(b'{"result":""}')
_MAX_REPLY = 4 * 1024 * 1024


class JsonLines(logging.Formatter):
    """One orjson-encoded object per line, like the API's log format."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return orjson.dumps(entry, default=str).decode()


class AccessLog(AbstractAccessLogger):
    """The same allow-listed fields the API logs: reqId, method, route, status, duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match = getattr(request, "match_info", None)
        route = match.route.resource.canonical if match is not None and match.route.resource else None
        fields = {
            "reqId": request.get("req_id"),
            "method": request.method,
            "route": route,
            "status": response.status,
            "duration_ms": round(time * 1000, 3),
        }
        self.logger.info("request", extra={"fields": fields})


async def handle(request: web.Request) -> web.Response:
    req_id = str(uuid.uuid4())
    request["req_id"] = req_id
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return web.Response(status=401, body=b'{"statusCode":401}', content_type="application/json")
    body = orjson.loads(await request.read())
    if not isinstance(body, dict):
        return web.Response(status=422, body=b'{"statusCode":422}', content_type="application/json")
    size = min(int(request.headers.get("X-Bench-Reply-Bytes", "64")), _MAX_REPLY)
    reply = orjson.dumps({"result": "A" * max(0, size - _EMPTY_REPLY)})
    return web.Response(body=reply, content_type="application/json", headers={"X-Request-Id": req_id})


def make_app() -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post("/api/v1/kms/keys/{keyId}/{op}", handle)
    return app


async def serve(host: str, port: int, reuse_port: bool) -> None:
    runner = web.AppRunner(
        make_app(),
        handle_signals=False,
        access_log_class=AccessLog,
        access_log=logging.getLogger("baseline.access"),
    )
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    logging.getLogger("baseline").info("listening", extra={"fields": {"url": f"http://{host}:{port}"}})
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def supervise(host: str, port: int, workers: int) -> int:
    """Fork `workers` processes on one SO_REUSEPORT port, as `kubekms-api --workers N` does."""
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            uvloop.run(serve(host, port, reuse_port=True))
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        os.waitpid(child, 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    if args.workers > 1:
        return supervise(args.host, args.port, args.workers)
    uvloop.run(serve(args.host, args.port, reuse_port=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
