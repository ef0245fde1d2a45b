"""A key's exportability turns on and never off (Vault's `exportable` config: false -> true): the
SQLite store keeps the flag up whatever it is passed, the service refuses turning it off, and the
material of a key made exportable is exported by the core."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kms_core.errors import BadRequest
from kms_core.identity import Identity
from kms_core.model import KeySpec
from kms_core.policy import Action
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import EXPORTABLE_IS_ONE_WAY, KeyService
from kms_core.stores.sqlite import SqliteStore

ME = Identity("me", "me", "token")


class Everything:
    """A policy that allows every action (this test is about the flag, not permissions)."""

    async def check(self, identity: Identity, action: Action, project: str, key_name: str | None) -> None:
        return None


def test_the_store_only_turns_exportability_on(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path, "kek-1")
        key = await store.create("a" * 8, KeySpec("p", "k"), b"sealed")
        assert not key.is_exportable
        assert not (await store.update(key.id, is_exportable=False)).is_exportable
        assert (await store.update(key.id, is_exportable=True)).is_exportable
        assert (await store.update(key.id, is_exportable=False)).is_exportable  # never back
        again = await store.get(key.id)
        assert again is not None and again.is_exportable and again.updated_at > key.updated_at
        await store.close()

    asyncio.run(run())


def test_the_service_exports_a_key_made_exportable_and_refuses_turning_it_off(tmp_path: Path) -> None:
    async def run() -> None:
        sealer = RootKeySealer(os.urandom(32))
        service = KeyService(SqliteStore.open(tmp_path, sealer.kek_id), sealer, Everything())
        key = (await service.create(ME, KeySpec("p", "k"))).result
        with pytest.raises(BadRequest):
            await service.export_private_key(ME, key.id)
        assert (await service.update(ME, key.id, is_exportable=True)).result.is_exportable
        assert len((await service.export_private_key(ME, key.id)).result) == 32
        with pytest.raises(BadRequest, match=EXPORTABLE_IS_ONE_WAY):
            await service.update(ME, key.id, is_exportable=False)
        await service.close()

    asyncio.run(run())
