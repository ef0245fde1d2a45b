"""Transit's derivation flags are stored with the key in SQLite (migration 3) and survive a
delete within the recovery window and the restore: a derived key never comes back underived."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kms_core.errors import BadRequest
from kms_core.model import Algorithm, KeySpec
from kms_core.stores import schema
from kms_core.stores.sqlite import SqliteStore


def test_flags_round_trip_and_survive_delete_and_restore(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path, "kek-1")
        plain = await store.create("a" * 8, KeySpec("p", "plain"), b"sealed")
        derived = await store.create("b" * 8, KeySpec("p", "derived", derived=True), b"sealed")
        conv = await store.create(
            "c" * 8,
            KeySpec(
                "p", "conv", algorithm=Algorithm.CHACHA20_POLY1305, derived=True, convergent_encryption=True
            ),
            b"sealed",
        )
        assert (plain.derived, plain.convergent_encryption) == (False, False)
        assert (derived.derived, derived.convergent_encryption) == (True, False)
        assert (conv.derived, conv.convergent_encryption) == (True, True)
        await store.delete(conv.id, purge_at=datetime.now(UTC) + timedelta(days=1))
        restored = await store.restore(conv.id, None)
        assert (restored.derived, restored.convergent_encryption) == (True, True)
        again = await store.get(derived.id)
        assert again is not None and again.derived and not again.convergent_encryption
        with pytest.raises(BadRequest):
            await store.create("d" * 8, KeySpec("p", "bad", convergent_encryption=True), b"sealed")
        await store.close()

    asyncio.run(run())


def test_backup_and_import_flags_round_trip_one_way_and_migrate(tmp_path: Path) -> None:
    """Migration 4: a data dir at schema 3 (with a key in its recovery window) opens with the
    flags off; they are stored at creation, survive delete and restore, `allow_plaintext_backup`
    only turns on, and a rotation to generated material clears `imported`."""
    data = tmp_path / "old"
    data.mkdir(mode=0o700)
    conn = sqlite3.connect(data / "kubekms.db", isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for number, statements in enumerate(schema.MIGRATIONS[:3], start=1):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (number,))
    conn.execute("INSERT INTO meta VALUES ('org_id', 'org-1'), ('kek_id', 'kek-1')")
    row = "('old', 'p', 'old', NULL, 0, 'encrypt-decrypt', 'aes-256-gcm', 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0"
    conn.execute(f"INSERT INTO keys VALUES {row})")
    gone = row.replace("old", "gone")[:-3]  # deleted_keys: ..., rotated_at, deleted_at, purge_at, derivation
    conn.execute(f"INSERT INTO deleted_keys VALUES {gone}, 1, 9999999999999, 0)")
    conn.execute("INSERT INTO key_versions VALUES ('old', 1, x'00', 1)")
    conn.close()

    async def run() -> None:
        store = SqliteStore.open(data, "kek-1")
        old = await store.get("old")
        assert old is not None and (old.allow_plaintext_backup, old.imported, old.allow_rotation) == (
            False, False, False)  # fmt: skip
        back = await store.restore("gone", None)
        assert (back.allow_plaintext_backup, back.imported) == (False, False)
        spec = KeySpec("p", "imp", allow_plaintext_backup=True, imported=True, allow_rotation=True)
        imp = await store.create("e" * 8, spec, b"sealed")
        assert (imp.allow_plaintext_backup, imp.imported, imp.allow_rotation) == (True, True, True)
        assert (await store.update(imp.id, allow_plaintext_backup=False)).allow_plaintext_backup
        turned = await store.update(old.id, allow_plaintext_backup=True)
        assert turned.allow_plaintext_backup and not turned.imported
        again = await store.rotate(imp.id, 1, b"sealed-2", imported=True)
        assert again.imported  # import_version keeps the mark
        rotated = await store.rotate(imp.id, 2, b"sealed-3")
        assert not rotated.imported and rotated.allow_rotation
        await store.delete(rotated.id, purge_at=datetime.now(UTC) + timedelta(days=1))
        kept = await store.restore(rotated.id, None)
        assert (kept.allow_plaintext_backup, kept.imported, kept.allow_rotation) == (True, False, True)
        await store.close()

    asyncio.run(run())
