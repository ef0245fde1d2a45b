"""Abuse limits: a token bucket per identity, a bound on in-flight requests, and a body read deadline.

- Rate limit: each authenticated identity (or, for the login route and failed authentications,
  each client address) has a bucket of `burst` requests refilled at `rps` per second; an empty
  bucket answers 429 `RateLimitExceeded` with `Retry-After`. Limits are per process.
- Concurrency: at most `max_concurrency` requests are inside handlers at once; beyond that the
  process answers 503 `ServiceUnavailable` with `Retry-After` at once, instead of queueing
  without bound. Health probes are exempt so a saturated process is not restarted for it.

Security property: a client (or a leaked token) cannot monopolise a process; bucket keys are
identity ids or addresses, never tokens, and the bucket table is bounded.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any, Final

from aiohttp import web

from kms_api import metrics
from kms_core.errors import KmsError, RateLimited, Unavailable

EXEMPT_ROUTES: Final = frozenset({"healthz", "readyz", "openapi"})
MAX_BUCKETS: Final = 100_000
SATURATED = "The server is at capacity; retry shortly"


class RequestTimeout(KmsError):
    """The client did not send its request body in time (408)."""

    status = 408
    error = "RequestTimeout"


class RateLimiter:
    """Token buckets keyed by identity id or client address (least recently used evicted)."""

    def __init__(self, rps: float, burst: int, *, clock: Any = time.monotonic) -> None:
        self.rps = rps
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rps > 0

    def check(self, subject: str, scope: str) -> None:
        """Take one token for `subject`, or raise RateLimited with the seconds until one is back."""
        if not self.enabled:
            return
        now = self._clock()
        tokens, last = self._buckets.pop(subject, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rps)
        if tokens >= 1.0:
            self._buckets[subject] = (tokens - 1.0, now)
        else:
            self._buckets[subject] = (tokens, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)  # the least recently seen subject starts afresh
        if tokens < 1.0:
            metrics.RATE_LIMITED.labels(scope).inc()
            wait = (1.0 - tokens) / self.rps
            raise RateLimited(
                f"Rate limit exceeded. Please try again in {max(1, math.ceil(wait))} seconds", wait
            )


LIMITER = web.AppKey("rate_limiter", RateLimiter)


def client_address(request: web.BaseRequest) -> str:
    return "address:" + (request.remote or "unknown")


class InFlight:
    """At most `limit` requests inside handlers at once: `enter` refuses the one beyond with 503
    (at once, instead of queueing without bound); health probes are exempt. The one request
    middleware (`kms_api.middleware`) calls `enter` before and `leave` after the handler."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def enter(self, request: web.Request) -> bool:
        """Count `request` in (True), pass an exempt one uncounted (False), or raise Unavailable."""
        if self.limit <= 0 or request.match_info.route.name in EXEMPT_ROUTES:
            return False
        if self.count >= self.limit:
            metrics.SATURATED.inc()
            raise Unavailable(SATURATED, retry_after=1.0)
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1
