"""The embedded `KeyStore`: key records and sealed material in `<data-dir>/kubekms.db` (SQLite, WAL).

Point reads (`get`, the per-request hot path) run inline on one read-only connection: a WAL
reader never waits for writers and an indexed lookup costs microseconds. `get` answers from a
`KeyRecordCache` while `PRAGMA data_version` (one cheap statement) shows no commit by any other
connection, this process's writer included, so a change made by another worker or process is
seen on the next request. Writes run on one
dedicated thread with their own connection, each in a `BEGIN IMMEDIATE` transaction committed
with `synchronous=FULL`, so an acknowledged write survives a crash or power loss and concurrent
processes serialise on SQLite's lock (`busy_timeout`) instead of failing.

Security property: the store only ever holds sealed bytes; it refuses to open a data dir sealed
under another kek_id before writing anything; SQLite failures reach callers as `Unavailable`
with a fixed message, never as tracebacks or SQL text.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kms_core.errors import BadRequest, DuplicateName, NotFound, Unavailable
from kms_core.model import Algorithm, Key, KeySpec, KeyUsage, KeyVersion
from kms_core.stores import schema
from kms_core.stores.base import ListQuery
from kms_core.stores.recordcache import KeyRecordCache

T = TypeVar("T")
Row = tuple[Any, ...]

DB_NAME = "kubekms.db"
WRITE_BUSY_MS = 10_000
# Readers run on the event loop; a WAL reader is only ever blocked by rare recovery work, and a
# short bound keeps that from stalling every request.
READ_BUSY_MS = 1_000
_MAX_SQL_INT = 2**63 - 1

_KEY = (
    "SELECT id, project_id, name, description, is_disabled, key_usage, algorithm, version,"
    " is_exportable, has_delete_protection, created_at, updated_at"
)
_GET = _KEY + " FROM keys WHERE id = ?"
_GET_BY_NAME = _KEY + " FROM keys WHERE project_id = ? AND name = ?"
# The window count is computed before LIMIT/OFFSET and read off the first row, like Infisical's
# query: an empty page therefore reports totalCount 0 (spec §2.4).
_LIST = _KEY + ", COUNT(*) OVER () FROM keys WHERE project_id = ? AND kms_ilike(name, ?) ORDER BY name"
# Without a search the page is chosen on the (project_id, name) unique index alone (skipping
# `offset` index entries, not rows), then only its rows are read; the count comes from
# `_counts` (see `list`). No Python call per stored key, which made a 100k-key page take over a
# second.
_WINDOW = "SELECT rowid FROM keys WHERE project_id = ? ORDER BY name {order} LIMIT ? OFFSET ?"
_PAGE = {
    order: _KEY + " FROM keys WHERE rowid IN (" + _WINDOW.format(order=order) + ") ORDER BY name " + order
    for order in ("ASC", "DESC")
}
_COUNT = "SELECT COUNT(*) FROM keys WHERE project_id = ?"
_UPDATE = (
    "UPDATE keys SET name = COALESCE(?, name), description = COALESCE(?, description),"
    " is_disabled = COALESCE(?, is_disabled), has_delete_protection = COALESCE(?, has_delete_protection),"
    " updated_at = MAX(?, updated_at + 1) WHERE id = ?"
)


class SqliteStore:
    """`KeyStore` on one SQLite file. Build it with `SqliteStore.open(data_dir, kek_id)`."""

    generates_material = False

    def __init__(self, reader: sqlite3.Connection, writer: sqlite3.Connection, org_id: str) -> None:
        self._reader = reader
        self._writer = writer
        self._org_id = org_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubekms-sqlite")
        self._closed = False
        self._records = KeyRecordCache()
        self._version_cursor = reader.cursor()  # a reused cursor makes the per-request check cheaper
        self._loop_version: int | None = None  # data_version as read in this event-loop iteration
        # Keys per project, valid while data_version stays `_counts_version`: counting 100k index
        # entries takes ~6 ms, and list pages are read far more often than keys are written.
        self._counts: dict[str, int] = {}
        self._counts_version: int | None = None

    @classmethod
    def open(cls, data_dir: Path, kek_id: str) -> SqliteStore:
        """Open (creating if needed) `<data_dir>/kubekms.db`; raise `SealerMismatch` before any write
        when the data dir was sealed under another kek_id, `Unavailable` when it cannot be used."""
        data_dir = Path(data_dir)
        db = data_dir / DB_NAME
        schema.precheck_kek(db, kek_id)
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create the file ourselves so it is 0600 from its first byte (SQLite would use 0644
            # and its -wal/-shm files inherit the database file's mode).
            with contextlib.suppress(FileExistsError):
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise Unavailable(f"Cannot create the key store in {data_dir}: {exc.strerror}") from None
        if not os.access(data_dir, os.W_OK):
            # SQLite would only say "unable to open database file" (WAL needs its -shm file).
            raise Unavailable(f"The data directory {data_dir} is read-only; the key store must write there")
        if data_dir.stat().st_mode & 0o077:
            schema.log.warning("data dir %s is open to other users; chmod 700 is recommended", data_dir)
        writer: sqlite3.Connection | None = None
        reader: sqlite3.Connection | None = None
        try:
            writer = schema.connect(db, WRITE_BUSY_MS)
            schema.use_wal(writer, WRITE_BUSY_MS)
            org_id, _ = schema.initialise(writer, kek_id)
            reader = schema.connect(db, READ_BUSY_MS)
            reader.execute("PRAGMA query_only = ON")
            reader.create_function("kms_ilike", 2, schema.ilike, deterministic=True)
        except BaseException as exc:
            for conn in (reader, writer):
                if conn is not None:
                    conn.close()
            if isinstance(exc, sqlite3.Error):
                raise schema.unavailable(exc) from None
            raise
        return cls(reader, writer, org_id)

    # ------------------------------------------------------------------ plumbing

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        if self._closed:
            raise Unavailable("The key store is closed")
        try:
            return self._reader.execute(sql, params).fetchall()
        except UnicodeEncodeError:
            return []  # text that is not valid Unicode cannot equal or match any stored value
        except sqlite3.Error as exc:
            raise schema.unavailable(exc) from None

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one IMMEDIATE transaction on the writer thread; commit before returning."""
        if self._closed:
            raise Unavailable("The key store is closed")

        def run() -> T:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, UnicodeEncodeError):
                    raise BadRequest("Text fields must be valid Unicode") from None
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    raise schema.unavailable(exc) from None
                raise

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    def _key(self, row: Row) -> Key:
        return Key(
            id=row[0], project_id=row[1], name=row[2], description=row[3], is_disabled=bool(row[4]),
            org_id=self._org_id, key_usage=KeyUsage(row[5]), algorithm=Algorithm(row[6]),
            version=int(row[7]), is_exportable=bool(row[8]), has_delete_protection=bool(row[9]),
            created_at=schema.from_ms(row[10]), updated_at=schema.from_ms(row[11]),
        )  # fmt: skip

    def _locked_get(self, conn: sqlite3.Connection, key_id: str) -> Key:
        row = conn.execute(_GET, (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return self._key(row)

    # ------------------------------------------------------------------ KeyStore

    async def org_id(self) -> str:
        return self._org_id

    async def ready(self) -> None:
        self._read_data_version()  # one real read of the database file

    def _data_version(self) -> int:
        """`PRAGMA data_version`, read at most once per event-loop iteration.

        Every request served in an iteration had its bytes read by that iteration's (or an
        earlier) I/O poll, and the version is read after that poll: a commit that finished
        before a request was sent is therefore still seen by it. Under load dozens of requests
        share one iteration, and the pragma was the largest store cost per request."""
        version = self._loop_version
        if version is not None:
            return version
        version = self._read_data_version()
        try:
            asyncio.get_running_loop().call_soon(self._forget_loop_version)
        except RuntimeError:  # no running loop: nothing would forget it, so keep nothing
            return version
        self._loop_version = version
        return version

    def _forget_loop_version(self) -> None:
        self._loop_version = None

    def _read_data_version(self) -> int:
        """SQLite's counter of commits made by other connections (this process's writer included)."""
        if self._closed:
            raise Unavailable("The key store is closed")
        try:
            cursor = self._version_cursor
            cursor.execute("PRAGMA data_version")
            row = cursor.fetchone()
        except sqlite3.Error as exc:
            raise schema.unavailable(exc) from None
        return int(row[0])

    async def get(self, key_id: str) -> Key | None:
        # The version is read before the row: a commit in between empties the cache next time.
        version = self._data_version()
        cached = self._records.get(key_id, version)
        if cached is not None:
            return cached
        rows = self._read(_GET, (key_id,))
        if not rows:
            return None
        key = self._key(rows[0])
        self._records.put(key, version)
        return key

    async def get_by_name(self, project_id: str, name: str) -> Key | None:
        rows = self._read(_GET_BY_NAME, (project_id, name))
        return self._key(rows[0]) if rows else None

    async def list(self, query: ListQuery) -> tuple[list[Key], int]:
        if query.offset < 0 or query.limit < 0:
            raise BadRequest("offset and limit must not be negative")
        order = "DESC" if query.descending else "ASC"
        # SQLite integers are 64-bit; a larger offset or limit means "past the end" / "all".
        limit, offset = min(query.limit, _MAX_SQL_INT), min(query.offset, _MAX_SQL_INT)
        if query.search:
            pattern = "%" + query.search.lower() + "%"
            rows = self._read(f"{_LIST} {order} LIMIT ? OFFSET ?", (query.project_id, pattern, limit, offset))
            return [self._key(r) for r in rows], (int(rows[0][-1]) if rows else 0)
        version = self._data_version()  # read before the page: a commit after it is seen next time
        rows = self._read(_PAGE[order], (query.project_id, limit, offset))
        if not rows:
            return [], 0  # Infisical's count rides on the page's rows: an empty page reports 0
        return [self._key(r) for r in rows], self._count(query.project_id, version)

    def _count(self, project_id: str, version: int) -> int:
        if version != self._counts_version:
            self._counts.clear()  # someone committed: every count may be stale
            self._counts_version = version
        count = self._counts.get(project_id)
        if count is None:
            count = int(self._read(_COUNT, (project_id,))[0][0])
            self._counts[project_id] = count
        return count

    async def count_by_state(self) -> tuple[int, int]:
        """(enabled, disabled) key counts over every project, for the keys-by-state gauge."""
        rows = self._read(
            "SELECT COALESCE(SUM(is_disabled = 0), 0), COALESCE(SUM(is_disabled), 0) FROM keys", ()
        )
        return int(rows[0][0]), int(rows[0][1])

    async def versions(self, key_id: str) -> Sequence[KeyVersion]:
        """All versions of a key, newest first (empty when the key does not exist)."""
        rows = self._read(
            "SELECT version, sealed, created_at FROM key_versions WHERE key_id = ? ORDER BY version DESC",
            (key_id,),
        )
        return [KeyVersion(key_id, int(v), bytes(s), schema.from_ms(c)) for v, s, c in rows]

    async def create(self, key_id: str, spec: KeySpec, sealed: bytes | None) -> Key:
        if sealed is None:
            raise ValueError("SqliteStore.create needs the sealed version-1 material")
        now = schema.now_ms()

        def insert(conn: sqlite3.Connection) -> Key:
            try:
                conn.execute(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, 0, ?, ?, 1, ?, ?, ?, ?)",
                    (key_id, spec.project_id, spec.name, spec.description, str(spec.key_usage),
                     str(spec.algorithm), int(spec.is_exportable), int(spec.has_delete_protection), now, now),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
                    raise DuplicateName(spec.name, spec.project_id) from None
                raise BadRequest(f"A key with ID {key_id} already exists") from None
            conn.execute("INSERT INTO key_versions VALUES (?, 1, ?, ?)", (key_id, sealed, now))
            return self._locked_get(conn, key_id)

        try:
            return await self._write(insert)
        finally:
            self._counts.clear()  # this process's own commit; data_version may be memoised

    async def update(
        self,
        key_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        is_disabled: bool | None = None,
        has_delete_protection: bool | None = None,
    ) -> Key:
        changes = (name, description, is_disabled, has_delete_protection)
        flags = tuple(None if f is None else int(f) for f in (is_disabled, has_delete_protection))

        def change(conn: sqlite3.Connection) -> Key:
            before = self._locked_get(conn, key_id)
            if all(c is None for c in changes):
                return before
            try:
                conn.execute(_UPDATE, (name, description, *flags, schema.now_ms(), key_id))
            except sqlite3.IntegrityError:
                raise DuplicateName(name or before.name, before.project_id) from None
            return self._locked_get(conn, key_id)

        try:
            return await self._write(change)
        finally:
            self._records.drop(key_id)

    async def delete(self, key_id: str) -> Key:
        def remove(conn: sqlite3.Connection) -> Key:
            before = self._locked_get(conn, key_id)
            conn.execute("DELETE FROM keys WHERE id = ?", (key_id,))  # versions go by ON DELETE CASCADE
            return before

        try:
            return await self._write(remove)
        finally:
            self._records.drop(key_id)
            self._counts.clear()

    async def rotate(self, key_id: str, expected_version: int, sealed: bytes | None) -> Key:
        if sealed is None:
            raise ValueError("SqliteStore.rotate needs the sealed material of the new version")
        now = schema.now_ms()

        def append(conn: sqlite3.Connection) -> Key:
            # The check and both writes share one IMMEDIATE transaction: no other writer can slip
            # a version in between, so one (key, version) never gets two materials.
            if self._locked_get(conn, key_id).version != expected_version:
                raise BadRequest("Key was rotated concurrently; retry")
            new = expected_version + 1
            conn.execute("INSERT INTO key_versions VALUES (?, ?, ?, ?)", (key_id, new, sealed, now))
            conn.execute(
                "UPDATE keys SET version = ?, updated_at = MAX(?, updated_at + 1) WHERE id = ?",
                (new, now, key_id),
            )
            return self._locked_get(conn, key_id)

        try:
            return await self._write(append)
        finally:
            self._records.drop(key_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._records.clear()
        self._reader.close()
        # Wait for queued writes, then close on the writer thread: the last connection to close
        # checkpoints the WAL into the database file.
        await asyncio.get_running_loop().run_in_executor(self._pool, self._writer.close)
        self._pool.shutdown(wait=False)
