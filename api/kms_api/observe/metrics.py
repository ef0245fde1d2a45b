"""API Prometheus metrics and the separate /metrics listener (--metrics-port).

Metrics live in the process-wide prometheus registry next to `kms_core.metrics` (sealer, cache,
crypto failures), so one scrape shows both. With --workers > 1, prometheus_client's multiprocess
mode aggregates the workers and the supervisor serves the scrape.
Security property: label values come from fixed sets (route names, status classes, algorithm enum
values, key states); no key ids, names, identities or payloads ever become labels.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from kms_api.appstate import exchange_of
from kms_core.batched_metrics import TALLY

REQUESTS: Final = Counter(
    "kubekms_requests_total",
    "HTTP requests by operation (route name), status class and algorithm.",
    ["operation", "status_class", "algorithm"],
)
LATENCY: Final = Histogram(
    "kubekms_request_duration_seconds",
    "HTTP request latency by operation and algorithm.",
    ["operation", "algorithm"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
ERRORS: Final = Counter(
    "kubekms_errors_total",
    "Error responses by operation and error name (e.g. BadRequest, ValidationFailure, TokenError).",
    ["operation", "error"],
)
KEYS: Final = Gauge(
    "kubekms_keys",
    "Keys known to this process's store, by state (enabled, disabled); refreshed periodically.",
    ["state"],
    multiprocess_mode="max",
)
RATE_LIMITED: Final = Counter(
    "kubekms_rate_limited",
    "Requests refused with 429 by the rate limits, by scope (identity, address; auth: the failed-"
    "authentication budget of a client address).",
    ["scope"],
)
SATURATED: Final = Counter(
    "kubekms_saturated_rejections",
    "Requests refused with 503 because the process had --max-concurrency requests in flight.",
)

UNMATCHED = "unmatched"


def operation_of(request: web.Request) -> str:
    route = request.match_info.route
    name = route.name if request.match_info.http_exception is None else None
    return name or UNMATCHED


_STATUS_CLASSES: Final = {n: f"{n}xx" for n in range(1, 6)}
# Labelled children by (operation, status code, algorithm). `.labels()` hashes and locks on every
# call; the key space is bounded (route names x status codes x algorithm enum values), and the
# cap only guards against an unforeseen label source.
_CHILDREN: dict[tuple[str, int, str], tuple[Any, Any]] = {}
_MAX_CHILDREN: Final = 4096


def _children(operation: str, status: int, algorithm: str) -> tuple[Any, Any]:
    key = (operation, status, algorithm)
    found = _CHILDREN.get(key)
    if found is None:
        status_class = _STATUS_CLASSES.get(status // 100) or f"{status // 100}xx"
        found = (REQUESTS.labels(operation, status_class, algorithm), LATENCY.labels(operation, algorithm))
        if len(_CHILDREN) < _MAX_CHILDREN:
            _CHILDREN[key] = found
    return found


def observe_request(request: web.Request, response: web.StreamResponse, started: float) -> None:
    """Count one finished request and its latency since `started` (a perf_counter value)."""
    operation = operation_of(request)
    exchange = exchange_of(request)
    requests, latency = _children(operation, response.status, exchange.algorithm)
    # Applied at the end of the loop iteration, batched (kms_core.batched_metrics): a scrape sees them.
    TALLY.inc(requests)
    TALLY.observe(latency, time.perf_counter() - started)
    if exchange.error_name is not None:
        ERRORS.labels(operation, exchange.error_name).inc()


def set_key_counts(enabled: int, disabled: int) -> None:
    KEYS.labels("enabled").set(enabled)
    KEYS.labels("disabled").set(disabled)


def metrics_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def metrics_app() -> web.Application:
    """The scrape endpoint: GET /metrics in Prometheus text format."""
    registry = metrics_registry()

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app
