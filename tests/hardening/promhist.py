"""Reading the API's Prometheus scrape: request counters and latency quantiles between two scrapes.

The soak judges latency on the server's own histogram (`kubekms_request_duration_seconds`), so a
slow load generator cannot pass for a slow server. Quantiles are computed from bucket deltas with
the interpolation of Prometheus' `histogram_quantile`. Security property: the scrape carries only
bounded labels (operation, algorithm, status class); nothing here reads request data.
"""

from __future__ import annotations

import math
import re
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

LATENCY = "kubekms_request_duration_seconds"
REQUESTS = "kubekms_requests_total"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Scrape:
    """Cumulative counts of one scrape: latency buckets by operation, requests by status class."""

    buckets: dict[str, dict[float, float]] = field(default_factory=lambda: defaultdict(dict))
    requests: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def minus(self, earlier: Scrape) -> Scrape:
        """Counts observed between `earlier` and this scrape (counters only grow in one process)."""
        out = Scrape()
        for op, les in self.buckets.items():
            before = earlier.buckets.get(op, {})
            out.buckets[op] = {le: n - before.get(le, 0.0) for le, n in les.items()}
        for cls, n in self.requests.items():
            out.requests[cls] = n - earlier.requests.get(cls, 0.0)
        return out

    def merged(self, operations: list[str] | None = None) -> dict[float, float]:
        """Cumulative buckets summed over `operations` (all when None)."""
        total: dict[float, float] = defaultdict(float)
        for op, les in self.buckets.items():
            if operations is None or op in operations:
                for le, n in les.items():
                    total[le] += n
        return dict(total)

    def errors(self) -> int:
        return int(sum(n for cls, n in self.requests.items() if cls != "2xx"))

    def total(self) -> int:
        return int(sum(self.requests.values()))


def parse(text: str) -> Scrape:
    """The two metrics the soak needs from a Prometheus text exposition."""
    scrape = Scrape()
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, raw_labels, value = match.groups()
        if name not in (f"{LATENCY}_bucket", REQUESTS):
            continue
        labels = dict(_LABEL.findall(raw_labels or ""))
        if name == REQUESTS:
            scrape.requests[labels.get("status_class", "?")] += float(value)
        else:
            op, le = labels.get("operation", "?"), float(labels["le"])
            # Several algorithms per operation: their buckets add up.
            scrape.buckets[op][le] = scrape.buckets[op].get(le, 0.0) + float(value)
    return scrape


def fetch(url: str, timeout: float = 10) -> Scrape:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return parse(resp.read().decode())


def quantile(q: float, buckets: dict[float, float]) -> float:
    """`histogram_quantile(q, ...)` on cumulative buckets {upper bound: count}; NaN when empty.

    As in Prometheus: linear interpolation inside the bucket holding the rank, the lower bound of
    the first bucket is 0, and a rank in the +Inf bucket returns the highest finite bound.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return math.nan
    total = buckets[bounds[-1]]
    if total <= 0:
        return math.nan
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound
