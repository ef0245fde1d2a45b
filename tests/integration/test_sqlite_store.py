"""The embedded SQLite key store: every operation, its errors, list semantics, identity and sealing.

Real SQLite files in tmp_path; "sealed" material is random bytes (the store never interprets it).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration.helpers.sqlite_processes import assert_consistent, raw
from kms_core.errors import BadRequest, DuplicateName, NotFound, SealerMismatch, Unavailable
from kms_core.model import Algorithm, Key, KeySpec, KeyUsage
from kms_core.stores import schema
from kms_core.stores.base import KeyStore, ListQuery
from kms_core.stores.sqlite import SqliteStore

KEK = "0123456789abcdef"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(data_dir, KEK)
    yield s
    await s.close()


async def make(store: SqliteStore, name: str, project: str = "proj", **kw: object) -> tuple[Key, bytes]:
    sealed = os.urandom(60)
    key = await store.create(str(uuid.uuid4()), KeySpec(project, name, **kw), sealed)  # type: ignore[arg-type]
    return key, sealed


def names(keys: list[Key]) -> list[str]:
    return [k.name for k in keys]


# ---------------------------------------------------------------------------- opening, identity


def test_open_creates_private_wal_database_with_schema(data_dir: Path) -> None:
    store = SqliteStore.open(data_dir, KEK)
    asyncio.run(store.close())
    db = data_dir / "kubekms.db"
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert db.stat().st_mode & 0o777 == 0o600
    conn = raw(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (len(schema.MIGRATIONS),)
    meta = dict(conn.execute("SELECT name, value FROM meta"))
    conn.close()
    assert meta["kek_id"] == KEK
    assert uuid.UUID(meta["org_id"]).version == 4
    protocol = [n for n, f in vars(KeyStore).items() if inspect.iscoroutinefunction(f)]
    assert len(protocol) == 20
    assert {"count_by_state", "set_policy", "trim", "restore", "purge"} <= set(protocol)
    assert all(inspect.iscoroutinefunction(getattr(SqliteStore, n)) for n in protocol)
    assert store.generates_material is False


async def test_org_id_is_stable_across_reopen_and_differs_per_data_dir(tmp_path: Path) -> None:
    first = SqliteStore.open(tmp_path / "a", KEK)
    org = await first.org_id()
    key, _ = await make(first, "k")
    await first.close()
    again = SqliteStore.open(tmp_path / "a", KEK)
    other = SqliteStore.open(tmp_path / "b", KEK)
    try:
        assert await again.org_id() == org
        assert (await again.get(key.id)) is not None
        assert (await again.get(key.id)).org_id == org  # type: ignore[union-attr]
        assert await other.org_id() != org
    finally:
        await again.close()
        await other.close()


async def test_reopen_keeps_every_record_and_version(data_dir: Path) -> None:
    store = SqliteStore.open(data_dir, KEK)
    key, v1 = await make(store, "persist", description="d", key_usage=KeyUsage.SIGN_VERIFY,
                         algorithm=Algorithm.ECC_NIST_P256, is_exportable=True)  # fmt: skip
    v2 = os.urandom(33)
    await store.rotate(key.id, 1, v2)
    updated = await store.update(key.id, is_disabled=True, has_delete_protection=True)
    before_versions = list(await store.versions(key.id))
    await store.close()
    reopened = SqliteStore.open(data_dir, KEK)
    try:
        assert await reopened.get(key.id) == updated
        assert list(await reopened.versions(key.id)) == before_versions
        assert [v.sealed for v in before_versions] == [v2, v1]
    finally:
        await reopened.close()


async def test_relative_data_dir_reopens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStore.open(Path("rel"), KEK)
    key, _ = await make(store, "k")
    await store.close()
    with pytest.raises(SealerMismatch):
        SqliteStore.open(Path("rel"), "ffffffffffffffff")
    store = SqliteStore.open(Path("rel"), KEK)
    assert await store.get(key.id) == key
    await store.close()


def _snapshot(data_dir: Path) -> tuple[bytes, int, list[str]]:
    db = data_dir / "kubekms.db"
    return db.read_bytes(), db.stat().st_mtime_ns, sorted(os.listdir(data_dir))


async def test_other_kek_is_refused_and_nothing_is_written(data_dir: Path) -> None:
    store = SqliteStore.open(data_dir, KEK)
    key, _ = await make(store, "k")
    await store.close()
    before = _snapshot(data_dir)
    await asyncio.sleep(0.01)  # an accidental write would then show in the mtime
    with pytest.raises(SealerMismatch) as err:
        SqliteStore.open(data_dir, "ffffffffffffffff")
    assert err.value.expected == KEK and err.value.actual == "ffffffffffffffff"
    assert _snapshot(data_dir) == before
    store = SqliteStore.open(data_dir, KEK)
    assert await store.get(key.id) is not None
    await store.close()


async def test_other_kek_is_refused_while_the_store_is_open_elsewhere(data_dir: Path) -> None:
    store = SqliteStore.open(data_dir, KEK)
    await make(store, "k")  # leaves frames in the WAL: the check must read through it
    db_bytes = (data_dir / "kubekms.db").read_bytes()
    try:
        with pytest.raises(SealerMismatch):
            SqliteStore.open(data_dir, "ffffffffffffffff")
        assert (data_dir / "kubekms.db").read_bytes() == db_bytes
        await make(store, "still-works")
    finally:
        await store.close()
    conn = raw(data_dir / "kubekms.db")
    assert dict(conn.execute("SELECT name, value FROM meta"))["kek_id"] == KEK
    conn.close()


def test_newer_schema_is_refused(data_dir: Path) -> None:
    asyncio.run(SqliteStore.open(data_dir, KEK).close())
    conn = raw(data_dir / "kubekms.db")
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (len(schema.MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(Exception, match="newer than this KubeKMS"):
        SqliteStore.open(data_dir, KEK)


# ---------------------------------------------------------------------------- create / get


async def test_create_stores_record_and_version_one(store: SqliteStore) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    key, sealed = await make(store, "first", description="hello", key_usage=KeyUsage.GENERATE_VERIFY_MAC,
                             algorithm=Algorithm.HMAC_SHA_256, has_delete_protection=True)  # fmt: skip
    assert (key.name, key.project_id, key.description) == ("first", "proj", "hello")
    assert (key.key_usage, key.algorithm, key.version) == (
        KeyUsage.GENERATE_VERIFY_MAC,
        Algorithm.HMAC_SHA_256,
        1,
    )
    assert (key.is_disabled, key.is_exportable, key.has_delete_protection) == (False, False, True)
    assert key.org_id == await store.org_id()
    assert key.created_at == key.updated_at
    assert key.created_at.tzinfo is UTC and key.created_at.microsecond % 1000 == 0
    assert t0 <= key.created_at <= datetime.now(UTC)
    assert await store.get(key.id) == key
    assert await store.get_by_name("proj", "first") == key
    [version] = await store.versions(key.id)
    assert (version.key_id, version.version, version.sealed) == (key.id, 1, sealed)
    assert version.created_at == key.created_at


async def test_absent_keys_read_as_none(store: SqliteStore) -> None:
    await make(store, "here")
    assert await store.get(str(uuid.uuid4())) is None
    assert await store.get_by_name("proj", "absent") is None
    assert await store.get_by_name("other", "here") is None
    assert await store.get_by_name("proj", "HERE") is None  # exact match, as the spec's DB query
    assert await store.get_by_name("proj\ud800", "here") is None  # not encodable: absent, no error
    assert list(await store.versions(str(uuid.uuid4()))) == []


async def test_duplicate_name_in_project_is_refused(store: SqliteStore) -> None:
    await make(store, "dup")
    with pytest.raises(DuplicateName) as err:
        await make(store, "dup")
    assert err.value.message == 'A KMS key with the name "dup" already exists for the project with ID "proj"'
    other, _ = await make(store, "dup", project="elsewhere")
    assert other.project_id == "elsewhere"
    assert (await store.list(ListQuery("proj")))[1] == 1


async def test_create_and_rotate_require_material(store: SqliteStore) -> None:
    with pytest.raises(ValueError):
        await store.create(str(uuid.uuid4()), KeySpec("proj", "x"), None)
    key, _ = await make(store, "y")
    with pytest.raises(ValueError):
        await store.rotate(key.id, 1, None)
    assert await store.get_by_name("proj", "x") is None


async def test_text_that_is_not_unicode_is_a_bad_request(store: SqliteStore) -> None:
    with pytest.raises(BadRequest, match="valid Unicode"):
        await make(store, "bad\ud800")
    key, _ = await make(store, "good")
    with pytest.raises(BadRequest, match="valid Unicode"):
        await store.update(key.id, description="\udfff")
    assert await store.get(key.id) == key
    assert (await store.list(ListQuery("proj")))[1] == 1


# ---------------------------------------------------------------------------- list


@pytest.fixture
async def listed(store: SqliteStore) -> SqliteStore:
    for name in ["delta", "alpha", "Charlie", "bravo", "echo", "a_b", "a%b", "axb", "Ärger"]:
        await make(store, name)
    await make(store, "alpha-other", project="other")
    disabled = await store.get_by_name("proj", "echo")
    assert disabled is not None
    await store.update(disabled.id, is_disabled=True)
    return store


async def test_list_orders_by_name_and_pages(listed: SqliteStore) -> None:
    everything = sorted(["delta", "alpha", "Charlie", "bravo", "echo", "a_b", "a%b", "axb", "Ärger"])
    keys, total = await listed.list(ListQuery("proj"))
    assert names(keys) == everything and total == 9
    keys, total = await listed.list(ListQuery("proj", descending=True))
    assert names(keys) == everything[::-1] and total == 9
    keys, total = await listed.list(ListQuery("proj", offset=2, limit=3))
    assert names(keys) == everything[2:5] and total == 9
    keys, total = await listed.list(ListQuery("proj", offset=7, limit=5, descending=True))
    assert names(keys) == everything[::-1][7:] and total == 9
    assert any(k.is_disabled for k in (await listed.list(ListQuery("proj")))[0])


async def test_unsearched_pages_match_the_searched_query_path(listed: SqliteStore) -> None:
    # A page without `search` takes the indexed query; `search="%"` matches every name through
    # the ILIKE path. Both must give the same keys and counts for every window and order.
    for descending in (False, True):
        for offset in range(0, 11):
            for limit in (0, 1, 2, 5, 9, 50):
                window = {"offset": offset, "limit": limit, "descending": descending}
                plain = await listed.list(ListQuery("proj", **window))
                searched = await listed.list(ListQuery("proj", search="%", **window))
                assert plain == searched, (offset, limit, descending)
                assert plain[1] == (9 if plain[0] else 0)


async def test_list_empty_page_reports_total_zero(listed: SqliteStore) -> None:
    assert await listed.list(ListQuery("proj", offset=9)) == ([], 0)
    assert await listed.list(ListQuery("proj", offset=100, search="a")) == ([], 0)
    assert await listed.list(ListQuery("nobody")) == ([], 0)
    with pytest.raises(BadRequest):
        await listed.list(ListQuery("proj", offset=-1))


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ALPHA", ["alpha"]),  # case-insensitive, other projects excluded
        ("ha", ["Charlie", "alpha"]),
        ("a_b", ["a%b", "a_b", "axb"]),  # `_` matches any one character
        ("a%b", ["a%b", "a_b", "axb"]),  # `%` matches any run
        ("l%a", ["alpha", "delta"]),
        ("c%o", ["echo"]),
        ("ä", ["Ärger"]),  # non-ASCII folds too, like PostgreSQL's ILIKE
        ("", ["Charlie", "a%b", "a_b", "alpha", "axb", "bravo", "delta", "echo", "Ärger"]),
        ("%", ["Charlie", "a%b", "a_b", "alpha", "axb", "bravo", "delta", "echo", "Ärger"]),
        ("zz", []),
        ("a\\b", []),
        ("\x00", []),
        ("\ud800", []),
        ("'; DROP TABLE keys; --", []),
        ("_" * 40, []),
    ],
)
async def test_list_search_is_ilike_substring(listed: SqliteStore, search: str, expected: list[str]) -> None:
    keys, total = await listed.list(ListQuery("proj", search=search))
    assert sorted(names(keys)) == sorted(expected)
    assert total == len(expected)


async def test_list_search_with_hostile_patterns_is_fast(listed: SqliteStore) -> None:
    started = time.monotonic()
    assert (await listed.list(ListQuery("proj", search="%" * 100_000)))[1] == 9
    assert (await listed.list(ListQuery("proj", search="%a" * 20 + "z")))[1] == 0
    assert (await listed.list(ListQuery("proj", search="x" * 100_000)))[1] == 0
    assert time.monotonic() - started < 2.0


def _reference_ilike(name: str, search: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in search)
    return re.search(regex, name, re.IGNORECASE | re.DOTALL) is not None


@given(name=st.text("abAB%_-", max_size=12), search=st.text("abAB%_", max_size=6))
def test_ilike_agrees_with_a_regex_reference(name: str, search: str) -> None:
    assert schema.ilike(name, "%" + search.lower() + "%") == _reference_ilike(name, search)


# ---------------------------------------------------------------------------- update / delete


async def test_update_changes_only_given_fields(store: SqliteStore) -> None:
    key, _ = await make(store, "orig", description="first")
    await asyncio.sleep(0.002)
    renamed = await store.update(key.id, name="renamed")
    assert (renamed.name, renamed.description, renamed.is_disabled) == ("renamed", "first", False)
    assert renamed.created_at == key.created_at and renamed.updated_at > key.updated_at
    described = await store.update(key.id, description="second")
    assert (described.name, described.description) == ("renamed", "second")
    assert described.updated_at > renamed.updated_at  # strictly increases even within one millisecond
    disabled = await store.update(key.id, is_disabled=True, has_delete_protection=True)
    assert (disabled.is_disabled, disabled.has_delete_protection, disabled.description) == (
        True,
        True,
        "second",
    )
    enabled = await store.update(key.id, is_disabled=False)
    assert (enabled.is_disabled, enabled.has_delete_protection) == (False, True)
    assert await store.update(key.id) == enabled
    assert await store.get(key.id) == enabled
    assert await store.get_by_name("proj", "orig") is None


async def test_update_errors(store: SqliteStore) -> None:
    key, _ = await make(store, "one")
    await make(store, "two")
    with pytest.raises(DuplicateName) as err:
        await store.update(key.id, name="two", description="ignored")
    assert err.value.message == 'A KMS key with the name "two" already exists for the project with ID "proj"'
    assert await store.get(key.id) == key  # the failed update changed nothing
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as nf:
        await store.update(missing, description="x")
    assert nf.value.message == f"Key with ID {missing} not found"
    with pytest.raises(NotFound):
        await store.update(missing)


async def test_delete_returns_key_and_cascades_versions(store: SqliteStore, data_dir: Path) -> None:
    key, _ = await make(store, "doomed")
    keep, _ = await make(store, "kept")
    rotated = await store.rotate(key.id, 1, os.urandom(32))
    assert await store.delete(key.id) == rotated
    assert await store.get(key.id) is None
    assert list(await store.versions(key.id)) == []
    conn = raw(data_dir / "kubekms.db")
    assert conn.execute("SELECT COUNT(*) FROM key_versions WHERE key_id = ?", (key.id,)).fetchone() == (0,)
    conn.close()
    assert len(await store.versions(keep.id)) == 1
    with pytest.raises(NotFound) as err:
        await store.delete(key.id)
    assert err.value.message == f"Key with ID {key.id} not found"
    again, _ = await make(store, "doomed")  # the name is free again
    assert again.version == 1


# ---------------------------------------------------------------------------- rotate


async def test_rotate_appends_versions_newest_first(store: SqliteStore) -> None:
    key, v1 = await make(store, "rot")
    v2, v3 = os.urandom(40), os.urandom(40)
    await asyncio.sleep(0.002)
    second = await store.rotate(key.id, 1, v2)
    assert second.version == 2 and second.updated_at == key.updated_at  # as Infisical: row untouched
    third = await store.rotate(key.id, 2, v3)
    assert third.version == 3 and (await store.get(key.id)) == third
    versions = list(await store.versions(key.id))
    assert [(v.version, v.sealed) for v in versions] == [(3, v3), (2, v2), (1, v1)]


async def test_rotate_conflicts_and_missing_key(store: SqliteStore) -> None:
    key, _ = await make(store, "rot")
    with pytest.raises(BadRequest) as err:
        await store.rotate(key.id, 2, os.urandom(8))
    assert err.value.message == "Key was rotated concurrently; retry"
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as nf:
        await store.rotate(missing, 1, os.urandom(8))
    assert nf.value.message == f"Key with ID {missing} not found"
    assert [v.version for v in await store.versions(key.id)] == [1]


async def test_concurrent_rotations_in_one_process_append_exactly_one(store: SqliteStore) -> None:
    key, _ = await make(store, "race")
    materials = [os.urandom(16) for _ in range(6)]
    results = await asyncio.gather(*(store.rotate(key.id, 1, m) for m in materials), return_exceptions=True)
    winners = [m for m, r in zip(materials, results, strict=True) if isinstance(r, Key)]
    assert len(winners) == 1
    assert all(isinstance(r, BadRequest) for r in results if not isinstance(r, Key))
    versions = await store.versions(key.id)
    assert [v.version for v in versions] == [2, 1] and versions[0].sealed == winners[0]


# ---------------------------------------------------------------------------- failures


async def test_closed_store_is_unavailable(data_dir: Path) -> None:
    store = SqliteStore.open(data_dir, KEK)
    key, _ = await make(store, "k")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(Unavailable):
        await store.get(key.id)
    with pytest.raises(Unavailable):
        await make(store, "later")


async def test_full_disk_is_unavailable_and_loses_nothing(store: SqliteStore, data_dir: Path) -> None:
    key, sealed = await make(store, "before")
    # A real SQLITE_FULL: cap the writer's database at its current size (PRAGMA max_page_count).
    store._db.writer.execute("PRAGMA max_page_count = 1")
    with pytest.raises(Unavailable) as err:
        for i in range(200):
            await store.create(str(uuid.uuid4()), KeySpec("proj", f"big-{i}"), os.urandom(4000))
    assert err.value.message == "The key store cannot write: the disk is full"
    store._db.writer.execute("PRAGMA max_page_count = 1073741823")
    assert (await store.versions(key.id))[0].sealed == sealed
    after, _ = await make(store, "after")
    assert await store.get(after.id) == after
    keys = assert_consistent(data_dir / "kubekms.db")
    assert key.id in keys and after.id in keys
