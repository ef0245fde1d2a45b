"""Failure injection for the emulated API server: refuse (e.g. 503, or any given `Status` body)
or delay matching requests.

Security property: none (test infrastructure).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kube import compat


@dataclass
class Faults:
    """Failure injection: until a deadline, answer a Status or sleep `delay` before answering.

    `path` (a regex searched in the URL path) and `method` limit a fault to matching requests;
    `hits` records "METHOD path" of every request a fault applied to.
    """

    fail_until: float = 0.0
    fail_body: dict[str, Any] = field(default_factory=dict)
    fail_match: tuple[re.Pattern[str] | None, str | None] = (None, None)
    slow_until: float = 0.0
    slow_delay: float = 0.0
    slow_match: tuple[re.Pattern[str] | None, str | None] = (None, None)
    hits: list[str] = field(default_factory=list)

    def fail(
        self,
        seconds: float,
        status: int = 503,
        path: str | None = None,
        method: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer `status` ("injected fault"), or the given `kind: Status` `body` (its `code` is
        the HTTP status), e.g. an admission webhook's denial with its message and causes."""
        self.fail_body = (
            copy.deepcopy(dict(body)) if body is not None
            else compat.status_body(status, _reason(status), "injected fault")
        )
        self.fail_match = (re.compile(path) if path else None, method)
        self.fail_until = time.monotonic() + seconds

    def slow(self, seconds: float, delay: float, path: str | None = None, method: str | None = None) -> None:
        self.slow_delay, self.slow_match = delay, (re.compile(path) if path else None, method)
        self.slow_until = time.monotonic() + seconds

    def heal(self) -> None:
        self.fail_until = self.slow_until = 0.0

    def check(self, method: str, path: str) -> tuple[float, dict[str, Any] | None]:
        """The delay to apply and the Status body to answer (None: serve the request)."""
        now = time.monotonic()
        delay = self.slow_delay if now < self.slow_until and _hit(self.slow_match, method, path) else 0.0
        failing = now < self.fail_until and _hit(self.fail_match, method, path)
        if delay or failing:
            self.hits.append(f"{method} {path}")
        return delay, copy.deepcopy(self.fail_body) if failing else None


def _reason(status: int) -> str:
    return {
        400: "BadRequest", 403: "Forbidden", 409: "Conflict", 422: "Invalid", 429: "TooManyRequests",
        500: "InternalError", 504: "Timeout",
    }.get(status, "ServiceUnavailable")


def _hit(match: tuple[re.Pattern[str] | None, str | None], method: str, path: str) -> bool:
    pattern, wanted = match
    return (pattern is None or pattern.search(path) is not None) and wanted in (None, method)
