"""The operator's liveness endpoint (`KUBEKMS_LIVENESS`, in a Pod `http://[::]:8081/healthz`), and its
Prometheus metrics at `/metrics` on the same port (the key-lifecycle counters of Kubernetes mode:
`kubekms_key_rotations_total{trigger}`, `kubekms_key_rotation_overdue{lateness}`).

Served by the operator rather than by Kopf's `liveness_endpoint`, because Kopf binds `::` with
IPV6_V6ONLY on: on an IPv4 or IPv4-first dual-stack cluster the kubelet's probe would never be
answered and the Pod restarted forever. `::` here is one dual-stack socket
(`kms_core.listener`); any other host is bound as given. It answers from the operator's own
event loop, so a stalled loop fails the probe, as with Kopf's endpoint.

Security property: answers a fixed body, and metrics whose labels come from fixed sets (no key
ids, names or material); reveals nothing about keys or configuration.
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kms_core.errors import ConfigError
from kms_core.listener import dual_stack_socket, is_any


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(endpoint: str) -> web.AppRunner:
    """Start serving `endpoint` (http://host:port/path); the caller cleans the runner up."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme != "http" or parts.port is None:
        raise ConfigError("KUBEKMS_LIVENESS must be http://<host>:<port>/<path>")
    app = web.Application()
    app.router.add_get(parts.path or "/", _healthz)
    if (parts.path or "/") != "/metrics":
        app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    host = parts.hostname or ""
    site: web.BaseSite
    if is_any(host):
        site = web.SockSite(runner, dual_stack_socket(parts.port))
    else:
        site = web.TCPSite(runner, host, parts.port)
    await site.start()
    return runner
