"""Prometheus updates batched per event-loop iteration: on the hot path an update is a dict add.

prometheus_client takes a lock for every increment and walks the bucket list for every
observation; the request counter, the latency histogram and the two cache counters cost ~6 µs of
every request at ~10k requests/s (measured: bench/RESULTS.md). Here a call made on an event
loop only adds to plain dicts, and the totals reach the real metric children once per loop
iteration (`call_soon`). A scrape, served in a later iteration, therefore sees every update made
before it started, and prometheus_client's multiprocess mode (`--workers`) keeps working because
the children still write their own files. Calls made without a running loop (worker threads,
synchronous code) update the child at once.

Security property: none of its own; callers pass children whose label values are fixed sets.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from typing import Any, Final


class Tally:
    """Pending counter increments and histogram observations of one process."""

    __slots__ = ("_counts", "_loop", "_observed")

    def __init__(self) -> None:
        self._counts: dict[Any, float] = {}
        self._observed: dict[Any, list[float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # where a flush is scheduled

    def inc(self, child: Any, amount: float = 1.0) -> None:
        """`child.inc(amount)`, applied at the end of this loop iteration."""
        if not self._defer():
            child.inc(amount)
            return
        counts = self._counts
        counts[child] = counts.get(child, 0.0) + amount

    def observe(self, child: Any, value: float) -> None:
        """`child.observe(value)` on a Histogram child, applied at the end of this loop iteration."""
        if not self._defer():
            child.observe(value)
            return
        values = self._observed.get(child)
        if values is None:
            self._observed[child] = [value]
        else:
            values.append(value)

    def _defer(self) -> bool:
        """True when the update may wait: on a loop, with a flush scheduled on that loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # a worker thread or synchronous code: the dicts belong to the loop
        if loop is not self._loop:
            # The first update of this iteration, or of a new loop (an earlier loop may have
            # closed before its flush ran; its leftovers go out with this one).
            loop.call_soon(self.flush)
            self._loop = loop
        return True

    def flush(self) -> None:
        """Apply every pending update to its child (also safe to call directly, e.g. in tests)."""
        self._loop = None
        counts, observed = self._counts, self._observed
        self._counts, self._observed = {}, {}
        for child, amount in counts.items():
            child.inc(amount)
        for child, values in observed.items():
            _observe_all(child, values)

    def _forget(self) -> None:
        """In a forked child: the parent's pending updates are the parent's to apply."""
        self._counts, self._observed, self._loop = {}, {}, None


def _observe_all(child: Any, values: list[float]) -> None:
    """One locked add per touched bucket instead of a bucket walk per value. Uses the Histogram
    child's documented-by-code layout (`_upper_bounds`, `_buckets`, `_sum`, stable since
    prometheus_client 0.4) and falls back to `observe` if a future version changes it."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            child.observe(value)
        return
    per_bucket: dict[int, int] = {}
    for value in values:
        index = bisect_left(bounds, value)  # the first bound >= value, as `observe` picks
        if index < len(bounds):
            per_bucket[index] = per_bucket.get(index, 0) + 1
    total.inc(sum(values))
    for index, count in per_bucket.items():
        buckets[index].inc(count)


TALLY: Final = Tally()
os.register_at_fork(after_in_child=TALLY._forget)
