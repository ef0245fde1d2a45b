"""Abuse limits: a token bucket per identity, a bound on in-flight requests, and a body read deadline.

- Rate limit: each authenticated identity (or, for the login route, each client address) has a
  bucket of `burst` requests refilled at `rps` per second; an empty bucket answers 429
  `RateLimitExceeded` with `Retry-After`. Limits are per process.
- Failed authentication: a separate, much smaller budget per client address (`FailedAuthLimiter`),
  checked before any costly authentication work, so token and secret guessing and TokenReview
  floods are refused with 429 before they cost anything.
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

from kms_api.observe import metrics
from kms_core.errors import RateLimited, Unavailable

EXEMPT_ROUTES: Final = frozenset({"healthz", "readyz", "openapi"})
MAX_BUCKETS: Final = 100_000
SATURATED = "The server is at capacity; retry shortly"


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


class FailedAuthLimiter:
    """A small budget of failed authentications per client address, refilled slowly.

    `check` is called before any costly authentication work (hashing a presented secret, a
    TokenReview): an address whose budget is spent gets 429 without that work being done. Each
    failure `spend`s one token; the balance may go below zero (down to `-burst`), so a burst of
    concurrent failures that all passed `check` is paid back before the next attempt. A costly
    check that awaits (a TokenReview) `hold`s one token while it runs, so concurrent attempts
    cannot overdraw the budget. Addresses with a full budget have no entry: for a well-behaved
    client `check` is one dict lookup.

    Security property: guessing tokens or client secrets, and using the API to flood the
    Kubernetes API server with TokenReviews, is bounded per address to `burst` attempts and then
    `rate` per second; keys are addresses, never tokens, and the table is bounded.
    """

    __slots__ = ("_buckets", "_clock", "burst", "rate")

    def __init__(self, rate: float, burst: int, *, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        # address -> [tokens at `last`, last, tokens held by costly checks in flight]
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def _entry(self, address: str) -> list[float]:
        now = self._clock()
        entry = self._buckets.pop(address, None)
        if entry is None:
            entry = [float(self.burst), now, 0.0]
        else:
            entry[0] = min(float(self.burst), entry[0] + (now - entry[1]) * self.rate)
            entry[1] = now
        self._buckets[address] = entry
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)  # the least recently seen address starts afresh
        return entry

    def _settle(self, address: str, entry: list[float]) -> None:
        """Forget an address whose budget is whole again (keeps the table and `check` small)."""
        if entry[2] <= 0 and entry[0] >= self.burst:
            self._buckets.pop(address, None)

    def check(self, address: str) -> None:
        """Raise RateLimited when `address` has no attempt left (nothing is spent)."""
        if address not in self._buckets:
            return
        entry = self._entry(address)
        available = entry[0] - entry[2]
        if available >= 1.0:
            self._settle(address, entry)
            return
        metrics.RATE_LIMITED.labels("auth").inc()
        wait = (1.0 - available) / self.rate
        raise RateLimited(
            f"Too many failed authentication attempts. Please try again in {max(1, math.ceil(wait))} seconds",
            wait,
        )

    def spend(self, address: str) -> None:
        """Count one failed attempt from `address`."""
        entry = self._entry(address)
        entry[0] = max(-float(self.burst), entry[0] - 1.0)

    def hold(self, address: str) -> None:
        """Reserve one attempt for a costly check in flight (RateLimited when none is left)."""
        self.check(address)
        self._entry(address)[2] += 1.0

    def release(self, address: str) -> None:
        """End a `hold` (its outcome is counted separately, by `spend` on failure)."""
        entry = self._buckets.get(address)
        if entry is not None:
            entry[2] = max(0.0, entry[2] - 1.0)
            self._settle(address, entry)


class AddressAttempt:
    """One request's authentication attempt, bound to its client address (`auth.base.Attempt`)."""

    __slots__ = ("address", "limiter")

    def __init__(self, limiter: FailedAuthLimiter, address: str) -> None:
        self.limiter = limiter
        self.address = address

    def hold(self) -> None:
        self.limiter.hold(self.address)

    def release(self) -> None:
        self.limiter.release(self.address)


FAILED_AUTH = web.AppKey("failed_auth_limiter", FailedAuthLimiter)


def client_address(request: web.BaseRequest) -> str:
    return "address:" + (request.remote or "unknown")


class InFlight:
    """At most `limit` requests inside handlers at once: `enter` refuses the one beyond with 503
    (at once, instead of queueing without bound); health probes are exempt. The one request
    middleware (`kms_api.http.middleware`) calls `enter` before and `leave` after the handler."""

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
