"""How many threads slow cryptography gets: one per CPU this process may actually use.

Security property: none (sizing only); it keeps slow private-key operations from starving the
event loop that serves every other request.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: taskset, cgroup cpusets), not the
    machine's count: a worker pinned to one CPU gains nothing from more crypto threads."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return max(1, os.cpu_count() or 1)


def crypto_threads() -> int:
    """Threads for slow crypto: one per usable CPU. `cryptography` releases the GIL during RSA
    and key generation, so with one CPU a single thread already keeps the CPU busy while the
    event loop (sharing it by the scheduler's time slices) keeps answering fast requests; a
    second thread would only add switching."""
    return usable_cpus()
