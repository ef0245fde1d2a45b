"""Failure injection for the emulated API server: refuse (e.g. 503) or delay matching requests.

Security property: none (test infrastructure).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Failure injection: until a deadline, answer `status` or sleep `delay` before answering.

    `path` (a regex searched in the URL path) and `method` limit a fault to matching requests;
    `hits` records "METHOD path" of every request a fault applied to.
    """

    fail_until: float = 0.0
    fail_status: int = 503
    fail_match: tuple[re.Pattern[str] | None, str | None] = (None, None)
    slow_until: float = 0.0
    slow_delay: float = 0.0
    slow_match: tuple[re.Pattern[str] | None, str | None] = (None, None)
    hits: list[str] = field(default_factory=list)

    def fail(
        self, seconds: float, status: int = 503, path: str | None = None, method: str | None = None
    ) -> None:
        self.fail_status, self.fail_match = status, (re.compile(path) if path else None, method)
        self.fail_until = time.monotonic() + seconds

    def slow(self, seconds: float, delay: float, path: str | None = None, method: str | None = None) -> None:
        self.slow_delay, self.slow_match = delay, (re.compile(path) if path else None, method)
        self.slow_until = time.monotonic() + seconds

    def heal(self) -> None:
        self.fail_until = self.slow_until = 0.0

    def check(self, method: str, path: str) -> tuple[float, int | None]:
        now = time.monotonic()
        delay = self.slow_delay if now < self.slow_until and _hit(self.slow_match, method, path) else 0.0
        status = self.fail_status if now < self.fail_until and _hit(self.fail_match, method, path) else None
        if delay or status is not None:
            self.hits.append(f"{method} {path}")
        return delay, status


def _hit(match: tuple[re.Pattern[str] | None, str | None], method: str, path: str) -> bool:
    pattern, wanted = match
    return (pattern is None or pattern.search(path) is not None) and wanted in (None, method)
