"""The embedded store's key-record cache: served from memory, dropped on every commit anywhere.

Two `SqliteStore`s on one data dir stand for two workers (or two processes): each has its own
connections, exactly as separate processes do, so `PRAGMA data_version` sees the other's commits
the same way. One test runs two real `kubekms-api` processes on one data dir over HTTP; the last
one covers a list-paging overflow on the same read path.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fixtures.api import ADMIN, OPERATOR, Api, P, b64, unb64
from fixtures.hardening import start_hardened
from kms_core.batched_metrics import TALLY
from kms_core.metrics import CACHE_REQUESTS
from kms_core.model import Key, KeySpec
from kms_core.stores.base import ListQuery
from kms_core.stores.recordcache import KeyRecordCache
from kms_core.stores.sqlite import SqliteStore

KEK = "0123456789abcdef"


def _hits() -> float:
    TALLY.flush()  # cache counters reach Prometheus at the end of the loop iteration
    return CACHE_REQUESTS.labels(cache="key_record", result="hit")._value.get()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    first = SqliteStore.open(tmp_path / "data", KEK)
    second = SqliteStore.open(tmp_path / "data", KEK)
    yield first, second
    await first.close()
    await second.close()


async def _make(store: SqliteStore, name: str = "k") -> Key:
    return await store.create(str(uuid.uuid4()), KeySpec(P, name), os.urandom(60))


async def test_a_warm_record_is_served_from_memory(stores: tuple[SqliteStore, SqliteStore]) -> None:
    store, _ = stores
    key = await _make(store)
    assert await store.get(key.id) == key  # miss: read and cached
    before = _hits()
    for _ in range(5):
        assert await store.get(key.id) == key
    assert _hits() - before == 5


async def test_own_writes_are_seen_at_once(stores: tuple[SqliteStore, SqliteStore]) -> None:
    store, _ = stores
    key = await _make(store)
    await store.get(key.id)
    updated = await store.update(key.id, is_disabled=True, description="off")
    assert await store.get(key.id) == updated and updated.is_disabled
    rotated = await store.rotate(key.id, 1, os.urandom(60))
    assert (await store.get(key.id)).version == rotated.version == 2  # type: ignore[union-attr]
    await store.delete(key.id)
    assert await store.get(key.id) is None


async def test_another_workers_writes_are_seen_on_the_next_read(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    worker_a, worker_b = stores
    key = await _make(worker_a)
    other = await _make(worker_a, "other")
    assert not (await worker_a.get(key.id)).is_disabled  # type: ignore[union-attr]
    await worker_a.get(other.id)

    await worker_b.update(key.id, is_disabled=True)
    assert (await worker_a.get(key.id)).is_disabled  # type: ignore[union-attr]

    await worker_b.rotate(other.id, 1, os.urandom(60))
    assert (await worker_a.get(other.id)).version == 2  # type: ignore[union-attr]

    await worker_b.delete(key.id)
    assert await worker_a.get(key.id) is None
    # A key the other worker created is found too (misses are never cached).
    fresh = await _make(worker_b, "fresh")
    assert await worker_a.get(fresh.id) == fresh


async def test_the_commit_counter_is_read_once_per_loop_iteration(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    worker_a, worker_b = stores
    key = await _make(worker_a)
    statements: list[str] = []
    worker_a._db.reader.set_trace_callback(statements.append)

    async def get() -> Key | None:
        return await worker_a.get(key.id)

    # Ten gets that run in one iteration share one PRAGMA data_version.
    await asyncio.gather(*(get() for _ in range(10)))
    assert statements.count("PRAGMA data_version") == 1
    # A commit elsewhere, then a request in a later iteration: read again, and seen.
    await worker_b.update(key.id, is_disabled=True)
    got = await get()
    assert statements.count("PRAGMA data_version") == 2
    assert got is not None and got.is_disabled


async def test_list_counts_follow_commits_by_this_and_other_workers(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    worker_a, worker_b = stores
    for i in range(3):
        await _make(worker_a, f"k{i}")
    assert (await worker_a.list(ListQuery(P, limit=1)))[1] == 3
    fresh = await _make(worker_b, "from-b")  # another worker's commit
    await asyncio.sleep(0)
    assert (await worker_a.list(ListQuery(P, limit=1)))[1] == 4
    await worker_a.delete(fresh.id)  # this worker's own commit, seen at once
    assert (await worker_a.list(ListQuery(P, limit=1)))[1] == 3
    await _make(worker_a, "k3")
    assert (await worker_a.list(ListQuery(P, limit=1)))[1] == 4


def test_the_cache_is_bounded_and_versioned() -> None:
    cache = KeyRecordCache(size=2)
    keys = [Key.__new__(Key) for _ in range(3)]
    for i, key in enumerate(keys):
        for field, value in (("id", f"id-{i}"), ("project_id", P), ("name", f"k{i}")):
            object.__setattr__(key, field, value)
        cache.put(key, version=7)
    assert len(cache) == 2 and cache.get("id-0", 7) is None and cache.get("id-2", 7) is keys[2]
    assert cache.by_name(P, "k0", 7) is None and cache.by_name(P, "k2", 7) is keys[2]
    assert cache.get("id-2", 8) is None and len(cache) == 0  # a new version empties it
    cache.put(keys[1], version=8)
    cache.drop("id-1")
    assert cache.get("id-1", 8) is None


async def test_two_processes_on_one_data_dir_see_each_others_changes(tmp_path: Path) -> None:
    # Worker A serves encrypts from its caches; worker B (another process on the same data dir)
    # disables, re-enables and deletes the key: A's very next request reflects each change.
    worker_a = start_hardened(tmp_path, name="a", env={"KUBEKMS_RATE_LIMIT_RPS": "0"})
    worker_b = start_hardened(tmp_path, name="b", env={"KUBEKMS_RATE_LIMIT_RPS": "0"})
    try:
        async with aiohttp.ClientSession() as http:
            a, b = Api(http, worker_a.url), Api(http, worker_b.url)
            key = await a.create("shared")
            path = a.key(key["id"], "encrypt")
            body = {"plaintext": b64(b"hello")}
            for _ in range(3):
                warm = await a.call("POST", path, body, token=OPERATOR)
                assert warm.status == 200
            assert (await b.call("PATCH", b.key(key["id"]), {"isDisabled": True}, token=ADMIN)).status == 200
            disabled = await a.call("POST", path, body, token=OPERATOR)
            assert (disabled.status, disabled.body["message"]) == (400, "Key is disabled")
            assert (await b.call("PATCH", b.key(key["id"]), {"isDisabled": False})).status == 200
            again = await a.call("POST", path, body, token=OPERATOR)
            assert again.status == 200
            ciphertext = {"ciphertext": again.body["ciphertext"]}
            plain = await b.call("POST", b.key(key["id"], "decrypt"), ciphertext)
            assert unb64(plain.body["plaintext"]) == b"hello"
            assert (await b.call("DELETE", b.key(key["id"]))).status == 200
            gone = await a.call("POST", path, body, token=OPERATOR)
            assert gone.status == 404
    finally:
        assert worker_a.stop() == 0
        assert worker_b.stop() == 0


async def test_a_list_offset_beyond_sqlite_integers_is_an_empty_page(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    # Found by the schema fuzzer: `offset=10**20` used to overflow SQLite's 64-bit integers (500).
    store, _ = stores
    await _make(store)
    assert await store.list(ListQuery(P, offset=10**20)) == ([], 0)
    page, total = await store.list(ListQuery(P, limit=10**20))
    assert len(page) == total == 1


async def test_by_name_is_cached_and_follows_renames_deletes_and_other_writers(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    store, other = stores
    key = await _make(store, "named")
    assert await store.get_by_name(P, "named") == key  # miss: read and cached
    before = _hits()
    for _ in range(3):
        assert await store.get_by_name(P, "named") == key
    assert _hits() - before == 3
    renamed = await store.update(key.id, name="renamed")  # this process's own write
    assert await store.get_by_name(P, "named") is None
    assert await store.get_by_name(P, "renamed") == renamed
    await other.update(key.id, is_disabled=True)  # another worker's commit
    assert (await store.get_by_name(P, "renamed")).is_disabled  # type: ignore[union-attr]
    await other.delete(key.id)
    assert await store.get_by_name(P, "renamed") is None
    again = await _make(store, "renamed")  # the name is free and now names another key
    assert await store.get_by_name(P, "renamed") == again
