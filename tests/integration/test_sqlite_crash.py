"""Crash and failure safety: SIGKILL mid-write loses no acknowledged write; read-only storage is
reported as `Unavailable` and leaves the file intact."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from integration.helpers.sqlite_processes import LineReader, assert_consistent, material, spawn
from kms_core.errors import Unavailable
from kms_core.model import KeySpec
from kms_core.stores.sqlite import SqliteStore

KEK = "a1b2c3d4e5f60718"


def test_sigkill_mid_write_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db = data_dir / "kubekms.db"
    asyncio.run(SqliteStore.open(data_dir, KEK).close())
    created: dict[str, bytes] = {}
    rotated: dict[tuple[str, int], bytes] = {}
    rng = random.Random()
    for _ in range(5):
        proc = spawn("churn", data_dir, KEK, "proj")
        reader = LineReader(proc)
        wanted = rng.randint(4, 60)
        reached = reader.read_until(lambda lines, n=wanted: len(lines) >= n, 20.0)  # type: ignore[misc]
        # The child writes in a tight loop, so the kill lands inside a write most of the time.
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        assert reached, proc.stderr.read().decode() if proc.stderr else ""
        for line in reader.drain():
            kind, key_id, *rest = line.split()
            if kind == "created":
                created[key_id] = bytes.fromhex(rest[0])
            else:
                rotated[(key_id, int(rest[0]))] = bytes.fromhex(rest[1])
        store = SqliteStore.open(data_dir, KEK)  # recovers the WAL the killed writer left
        try:
            keys = assert_consistent(db)
            for key_id, sealed in created.items():
                versions = asyncio.run(store.versions(key_id))
                assert versions[-1].version == 1 and versions[-1].sealed == sealed
                assert keys[key_id] == versions[0].version
            for (key_id, version), sealed in rotated.items():
                assert keys[key_id] >= version
                assert material(db, key_id, version) == sealed
        finally:
            asyncio.run(store.close())
    assert len(created) >= 5 and rotated


# ---------------------------------------------------------------------------- read-only storage


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make `paths` unwritable: clear the write bits, and, for root (who ignores permission bits),
    set the immutable attribute so the kernel refuses every write."""
    modes = {p: p.stat().st_mode & 0o7777 for p in paths}
    root = os.geteuid() == 0
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    if root:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        for p, mode in modes.items():
            p.chmod(mode)


async def _filled(data_dir: Path) -> tuple[str, bytes]:
    store = SqliteStore.open(data_dir, KEK)
    sealed = os.urandom(40)
    key = await store.create(str(uuid.uuid4()), KeySpec("proj", "kept"), sealed)
    await store.close()
    return key.id, sealed


async def _intact(data_dir: Path, key_id: str, sealed: bytes) -> None:
    assert_consistent(data_dir / "kubekms.db")
    store = SqliteStore.open(data_dir, KEK)
    try:
        assert [v.sealed for v in await store.versions(key_id)] == [sealed]
        await store.create(str(uuid.uuid4()), KeySpec("proj", "writable-again"), b"x")
    finally:
        await store.close()


def test_read_only_fresh_data_dir_is_unavailable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with read_only(data_dir), pytest.raises(Unavailable) as err:
        SqliteStore.open(data_dir, KEK)
    assert err.value.message.startswith(f"Cannot create the key store in {data_dir}")
    assert os.listdir(data_dir) == []


async def test_read_only_database_file_is_unavailable_and_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key_id, sealed = await _filled(data_dir)
    db = data_dir / "kubekms.db"
    before = db.read_bytes()
    with read_only(db), pytest.raises(Unavailable) as err:
        SqliteStore.open(data_dir, KEK)
    assert "read-only" in err.value.message
    assert db.read_bytes() == before
    await _intact(data_dir, key_id, sealed)


async def test_read_only_data_dir_with_database_is_unavailable_and_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key_id, sealed = await _filled(data_dir)
    db = data_dir / "kubekms.db"
    before = db.read_bytes()
    with read_only(data_dir), pytest.raises(Unavailable) as err:
        SqliteStore.open(data_dir, KEK)
    assert "read-only" in err.value.message
    assert db.read_bytes() == before
    await _intact(data_dir, key_id, sealed)
