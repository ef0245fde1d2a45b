"""Key lifecycle across real processes: seed a data dir, move the scheduler's clock of running
`kubekms-api` processes (the test-only KUBEKMS_TEST_CLOCK_OFFSET=@file), read their audit events,
and inspect the store file raw."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixtures.api import ROOT_KEY
from fixtures.callers import POLICY, Caller
from kms_core.lifecycle import PolicyChange
from kms_core.model import KeySpec
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.sqlite import SqliteStore

HOUR = 3600
ADMIN = Caller()


def service(data_dir: Path, *, deletion_window: int = 0) -> KeyService:
    """An in-process service on `data_dir`, sealed with the same root key as the test processes."""
    sealer = RootKeySealer(base64.b64decode(ROOT_KEY))
    return KeyService(
        SqliteStore.open(data_dir, sealer.kek_id), sealer, POLICY, deletion_window=deletion_window
    )


async def seed(data_dir: Path, count: int, period: int = HOUR, prefix: str = "k") -> dict[str, bytes]:
    """`count` AES keys rotating every `period`; returns {key id: a version-1 ciphertext of its id}."""
    svc = service(data_dir)
    try:
        seeded = {}
        for n in range(count):
            key = (await svc.create(ADMIN.identity, KeySpec("proj", f"{prefix}{n}"))).result
            await svc.set_policy(ADMIN.identity, key.id, PolicyChange(rotation_period=period))
            seeded[key.id] = (await svc.encrypt(ADMIN.identity, key.id, key.id.encode())).result
        return seeded
    finally:
        await svc.close()


async def decrypts(data_dir: Path, ciphertexts: dict[str, bytes]) -> None:
    """Every ciphertext still decrypts to its key's id."""
    svc = service(data_dir)
    try:
        for key_id, blob in ciphertexts.items():
            assert (await svc.decrypt(ADMIN.identity, key_id, blob)).result == key_id.encode()
    finally:
        await svc.close()


def clock_env(clock: Path, interval: float = 0.05) -> dict[str, str]:
    """The variables that give a process a movable scheduler clock (test hooks on)."""
    return {
        "ROOT_ENCRYPTION_KEY": ROOT_KEY,
        "KUBEKMS_TEST_HOOKS": "true",
        "KUBEKMS_TEST_CLOCK_OFFSET": f"@{clock}",
        "KUBEKMS_LIFECYCLE_INTERVAL": str(interval),
    }


def set_clock(clock: Path, offset: float) -> None:
    """Move the scheduler clocks reading `clock` to wall time + `offset` (atomic replace)."""
    tmp = clock.with_suffix(".tmp")
    tmp.write_text(str(offset))
    os.replace(tmp, clock)


def versions(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, version FROM keys"))
    finally:
        conn.close()


def scalar(db: Path, sql: str, *args: Any) -> Any:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


async def wait_for(check: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def audit_events(*logs: str, event_type: str) -> list[dict[str, Any]]:
    """The audit events of `event_type` in the processes' JSON log texts."""
    found = []
    for text in logs:
        for line in text.splitlines():
            if line.startswith("{") and f'"{event_type}"' in line:
                entry = json.loads(line)
                if entry.get("logger") == "kubekms.audit" and entry.get("type") == event_type:
                    found.append(entry)
    return found
