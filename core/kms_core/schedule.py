"""The lifecycle scheduler of a process that owns its store (embedded mode): scheduled rotations
and purges of deleted keys whose recovery window ended.

Every API process (and every `--workers` child) runs one. They need no coordination: a rotation
is the store's single transaction guarded by the version it read (`KeyService.rotate_if_due`),
so however many schedulers see a key due, exactly one new version is made; a purge of a key
another process already purged finds nothing. A process that was down rotates each overdue key
once when it comes back (the next due time is measured from the newest version).

Time is injected (`clock`) so tests drive due times without sleeping. Security property: the
scheduler acts only through the service and the store, on what each key's own policy asks for;
its callbacks receive key records, never material.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from kms_core import lifecycle
from kms_core.errors import KmsError, NotFound
from kms_core.metrics import KEY_ROTATION_OVERDUE
from kms_core.model import DeletedKey, Key
from kms_core.service import KeyService

__all__ = ["Clock", "LifecycleScheduler", "OnPurged", "OnRotated", "Pass", "utcnow"]

log = logging.getLogger("kubekms.schedule")

Clock = Callable[[], datetime]
OnRotated = Callable[[Key], Awaitable[None]]
OnPurged = Callable[[DeletedKey], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _ignore(_: object) -> None:
    return None


class Pass:
    """What one scheduler pass did: keys rotated, deleted keys purged, keys still overdue."""

    __slots__ = ("failed", "purged", "rotated")

    def __init__(self) -> None:
        self.rotated: list[Key] = []
        self.purged: list[DeletedKey] = []
        self.failed: list[str] = []


class LifecycleScheduler:
    """Runs `run_once` every `interval` seconds until stopped."""

    def __init__(
        self,
        service: KeyService,
        *,
        interval: float = 30.0,
        clock: Clock = utcnow,
        on_rotated: OnRotated = _ignore,
        on_purged: OnPurged = _ignore,
    ) -> None:
        self.service = service
        self.interval = interval
        self.clock = clock
        self.on_rotated = on_rotated
        self.on_purged = on_purged
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Pass:
        """One pass at `clock()`: rotate every due key, purge every expired deleted key, and set
        the overdue gauge from what is still due afterwards."""
        now = self.clock()
        done = Pass()
        store = self.service.store
        for key in await store.due_for_rotation(now):
            try:
                rotated = await self.service.rotate_if_due(key.id, now)
            except KmsError as exc:
                # Logged with the key id only; the next pass retries (the gauge shows it).
                failure = {"key_id": key.id, "error": type(exc).__name__}
                log.warning("scheduled rotation failed", extra=failure)
                done.failed.append(key.id)
                continue
            if rotated is not None:
                done.rotated.append(rotated)
                log.info("key rotated on schedule", extra={"key_id": key.id, "version": rotated.version})
                await self.on_rotated(rotated)
        for deleted in await store.expired(now):
            try:
                purged = await store.purge(deleted.key.id)
            except NotFound:
                continue  # another process purged it first
            done.purged.append(purged)
            log.info("deleted key purged", extra={"key_id": purged.key.id})
            await self.on_purged(purged)
        await self._count_overdue(now)
        return done

    async def _count_overdue(self, now: datetime) -> None:
        within = over = 0
        for key in await self.service.store.due_for_rotation(now):
            due = lifecycle.next_rotation(key)
            if due is None:
                continue
            if now - due > timedelta(seconds=key.rotation_period):
                over += 1
            else:
                within += 1
        KEY_ROTATION_OVERDUE.labels(lateness="within-period").set(within)
        KEY_ROTATION_OVERDUE.labels(lateness="over-period").set(over)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be briefly unavailable; try again later
                log.warning("lifecycle pass failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start the background loop (the first pass runs at once: missed rotations happen now)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="kubekms-lifecycle")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
