"""Batched Prometheus updates: deferred to the end of the loop iteration, identical once applied."""

from __future__ import annotations

import asyncio
import random
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from kms_core.batched_metrics import Tally

BUCKETS = (0.001, 0.005, 0.01, 0.1, 1.0)


def _metrics() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("t_requests", "test", ["op"], registry=registry)
    histogram = Histogram("t_latency", "test", ["op"], buckets=BUCKETS, registry=registry)
    return registry, counter, histogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


async def test_updates_wait_for_the_end_of_the_iteration_then_match_direct_updates() -> None:
    tally = Tally()
    batched, b_counter, b_hist = _metrics()
    direct, d_counter, d_hist = _metrics()
    rng = random.Random(7)
    # Values on, around and beyond every bound (le is inclusive, +Inf takes the rest).
    values = [*BUCKETS, 0.0, 2.0, 1e9, *(rng.uniform(0, 1.2) for _ in range(300))]
    for i, value in enumerate(values):
        op = "a" if i % 3 else "b"
        tally.inc(b_counter.labels(op))
        tally.observe(b_hist.labels(op), value)
        d_counter.labels(op).inc()
        d_hist.labels(op).observe(value)
    assert _samples(batched) != _samples(direct)  # nothing applied yet
    await asyncio.sleep(0)  # the iteration ends; the scheduled flush runs
    assert _samples(batched) == _samples(direct)


def test_without_a_running_loop_updates_apply_at_once() -> None:
    tally = Tally()
    registry, counter, histogram = _metrics()
    tally.inc(counter.labels("x"), 2)
    tally.observe(histogram.labels("x"), 0.004)
    got = _samples(registry)
    assert got[("t_requests_total", (("op", "x"),))] == 2
    assert got[("t_latency_bucket", (("le", "0.005"), ("op", "x")))] == 1
    assert got[("t_latency_bucket", (("le", "0.001"), ("op", "x")))] == 0


async def test_a_worker_thread_never_touches_the_loops_pending_updates() -> None:
    tally = Tally()
    registry, counter, _ = _metrics()
    tally.inc(counter.labels("loop"))  # pending on this loop
    thread = threading.Thread(target=lambda: [tally.inc(counter.labels("thread")) for _ in range(50)])
    thread.start()
    thread.join()
    got = _samples(registry)
    assert got[("t_requests_total", (("op", "thread"),))] == 50  # applied at once
    assert got[("t_requests_total", (("op", "loop"),))] == 0
    await asyncio.sleep(0)
    assert _samples(registry)[("t_requests_total", (("op", "loop"),))] == 1


def test_leftovers_of_a_loop_that_closed_go_out_with_the_next_loops_flush() -> None:
    tally = Tally()
    registry, counter, _ = _metrics()

    def value() -> float:
        return _samples(registry)[("t_requests_total", (("op", "x"),))]

    first = asyncio.new_event_loop()

    def bump_and_stop() -> None:
        tally.inc(counter.labels("x"))  # schedules a flush for the next iteration...
        first.stop()  # ...which never comes: the loop stops after this batch of callbacks

    first.call_soon(bump_and_stop)
    first.run_forever()
    first.close()
    assert value() == 0  # still pending

    async def bump() -> None:
        tally.inc(counter.labels("x"))

    second = asyncio.new_event_loop()
    second.run_until_complete(bump())
    second.run_until_complete(asyncio.sleep(0))
    second.close()
    assert value() == 2  # the new loop scheduled its own flush, and it took the leftover along
