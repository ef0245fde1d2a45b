"""Transit's derivation flags are stored with the key in SQLite (migration 3) and survive a
delete within the recovery window and the restore: a derived key never comes back underived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kms_core.errors import BadRequest
from kms_core.model import Algorithm, KeySpec
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
