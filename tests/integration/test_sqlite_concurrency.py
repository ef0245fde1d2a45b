"""Several OS processes on one data dir: one identity, no duplicates, no lost or doubled versions.

Each child (helpers/sqlite_writer.py) prints a line only after its store call returned, so every
printed line is an acknowledged write that must be in the file afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from integration.helpers.sqlite_processes import (
    LineReader,
    assert_consistent,
    finish,
    go,
    material,
    raw,
    spawn,
)
from kms_core.model import KeySpec
from kms_core.stores import schema
from kms_core.stores.sqlite import SqliteStore

KEK = "00112233445566aa"
OTHER_KEK = "ffeeddccbbaa9988"


def run_all(children: list[tuple[str, str, tuple[str, ...]]], data_dir: Path) -> list[list[str]]:
    """Start every (mode, kek, args) child, release them together, return each one's lines."""
    procs = [spawn(mode, data_dir, kek, *args) for mode, kek, args in children]
    readers = [LineReader(p) for p in procs]
    try:
        go(procs, readers)
        return [finish(p, r) for p, r in zip(procs, readers, strict=True)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_concurrent_first_opens_agree_on_one_identity(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    outputs = run_all([("open", KEK, ())] * 4, data_dir)
    orgs = {line for out in outputs for line in out}
    assert len(orgs) == 1 and all(len(out) == 1 for out in outputs)
    conn = raw(data_dir / "kubekms.db")
    meta = dict(conn.execute("SELECT name, value FROM meta"))
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (len(schema.MIGRATIONS),)
    conn.close()
    assert orgs == {f"org {meta['org_id']}"} and meta["kek_id"] == KEK


def test_concurrent_first_opens_with_two_keks_let_exactly_one_kek_win(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    keks = [KEK, OTHER_KEK, KEK, OTHER_KEK]
    outputs = run_all([("open", kek, ()) for kek in keks], data_dir)
    conn = raw(data_dir / "kubekms.db")
    meta = dict(conn.execute("SELECT name, value FROM meta"))
    conn.close()
    for kek, out in zip(keks, outputs, strict=True):
        assert out == ([f"org {meta['org_id']}"] if kek == meta["kek_id"] else ["mismatch"])


def test_concurrent_creates_keep_names_unique_and_lose_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(SqliteStore.open(data_dir, KEK).close())
    n = 25
    # Both children create the same names: each name must be won by exactly one of them.
    outputs = run_all([("create", KEK, ("proj", "key", str(n)))] * 2, data_dir)
    created = [line.split() for out in outputs for line in out if line.startswith("created ")]
    dups = [line.split()[1] for out in outputs for line in out if line.startswith("dup ")]
    assert sorted(name for _, _, name, _ in created) == sorted(f"key-{i}" for i in range(n))
    assert sorted(dups) == sorted(f"key-{i}" for i in range(n))
    keys = assert_consistent(data_dir / "kubekms.db")
    assert len(keys) == n
    for _, key_id, _, sealed in created:
        assert keys[key_id] == 1
        assert material(data_dir / "kubekms.db", key_id, 1) == bytes.fromhex(sealed)


def test_concurrent_rotations_of_one_key_leave_no_gaps_or_doubles(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = SqliteStore.open(data_dir, KEK)
    first = os.urandom(48)
    key = asyncio.run(store.create(str(uuid.uuid4()), KeySpec("proj", "shared"), first))
    asyncio.run(store.close())
    per_child = 15
    outputs = run_all([("rotate", KEK, (key.id, str(per_child)))] * 2, data_dir)
    acked: dict[int, bytes] = {}
    for out in outputs:
        assert len(out) == per_child
        for line in out:
            _, version, sealed = line.split()
            assert int(version) not in acked, "two processes were acknowledged for one version"
            acked[int(version)] = bytes.fromhex(sealed)
    assert sorted(acked) == list(range(2, 2 * per_child + 2))
    keys = assert_consistent(data_dir / "kubekms.db")
    assert keys == {key.id: 2 * per_child + 1}
    for version, sealed in acked.items():
        assert material(data_dir / "kubekms.db", key.id, version) == sealed
    assert material(data_dir / "kubekms.db", key.id, 1) == first
