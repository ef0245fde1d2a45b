"""A deduplicating queue of KmsKeys to converge, drained by a few workers (client-go's workqueue).

A key is queued at most once however many events name it; it leaves the queue when a worker takes
it, so an event arriving while that key is being converged queues it again and no change is missed.
A few workers bound the load a burst of events (say, a namespace of Secrets deleted at once) puts
on the API server, and the watch reading events never waits for a reconciliation.

Security property: carries object names only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from kms_operator.keyindex import KeyRef

log = logging.getLogger("kubekms.operator.workqueue")


class KeyQueue:
    """`add(key)` from anywhere on the loop; `run()` drains it with `workers` concurrent calls."""

    def __init__(self, work: Callable[[KeyRef], Awaitable[None]], workers: int = 4) -> None:
        self._work = work
        self._workers = workers
        self._queue: asyncio.Queue[KeyRef] = asyncio.Queue()
        self._queued: set[KeyRef] = set()

    def add(self, key: KeyRef) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        return len(self._queued)

    async def run(self) -> None:
        """Run the workers until cancelled."""
        workers = [asyncio.create_task(self._worker(), name=f"key-check-{i}") for i in range(self._workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self._work(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # one key's failure must never stop the others' checks
                log.exception("checking KmsKey %s/%s failed", *key)
