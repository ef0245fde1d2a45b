"""The embedded `KeyStore`: key records and sealed material in `<data-dir>/kubekms.db` (SQLite, WAL).

Point reads (`get`, the per-request hot path) run inline on the read-only connection of a
`database.Database`; writes run on its writer thread, one durable `BEGIN IMMEDIATE` transaction
each. `get` answers from a `KeyRecordCache` while `PRAGMA data_version` (one cheap statement)
shows no commit by any other connection, this process's writer included, so a change made by
another worker or process is seen on the next request.

Security property: the store only ever holds sealed bytes; it refuses to open a data dir sealed
under another kek_id before writing anything; SQLite failures reach callers as `Unavailable`
with a fixed message, never as tracebacks or SQL text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from kms_core.derivation import derivation_code
from kms_core.errors import BadRequest, DuplicateName, NotFound
from kms_core.model import Algorithm, DeletedKey, Key, KeySpec, KeyUsage, KeyVersion
from kms_core.stores import recovery, schema
from kms_core.stores.base import Generation, ListQuery
from kms_core.stores.database import Database, Row, open_file
from kms_core.stores.recordcache import KeyRecordCache

_MAX_SQL_INT = 2**63 - 1

_COLUMNS = (
    "id, project_id, name, description, is_disabled, key_usage, algorithm, version,"
    " is_exportable, has_delete_protection, created_at, updated_at, rotation_period,"
    " min_decryption_version, min_encryption_version, min_available_version, rotated_at, derivation,"
    " allow_plaintext_backup, imported, allow_rotation"
)
_KEY = "SELECT " + _COLUMNS
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
    # MAX: exportability never turns off, whatever a caller passes (a key once exportable may
    # have been exported; turning the flag off would only pretend otherwise).
    " is_exportable = MAX(is_exportable, COALESCE(?, is_exportable)),"
    # The same for plaintext backups: a backup once allowed may have been taken.
    " allow_plaintext_backup = MAX(allow_plaintext_backup, COALESCE(?, allow_plaintext_backup)),"
    " updated_at = MAX(?, updated_at + 1) WHERE id = ?"
)


class SqliteStore:
    """`KeyStore` on one SQLite file. Build it with `SqliteStore.open(data_dir, kek_id)`."""

    generates_material = False

    def __init__(self, reader: sqlite3.Connection, writer: sqlite3.Connection, org_id: str) -> None:
        self._db = Database(reader, writer)
        self._org_id = org_id
        self._records = KeyRecordCache()
        # Keys per project, valid while data_version stays `_counts_version`: counting 100k index
        # entries takes ~6 ms, and list pages are read far more often than keys are written.
        self._counts: dict[str, int] = {}
        self._counts_version: int | None = None

    @classmethod
    def open(cls, data_dir: Path, kek_id: str) -> SqliteStore:
        """Open (creating if needed) `<data_dir>/kubekms.db`; raise `SealerMismatch` before any write
        when the data dir was sealed under another kek_id, `Unavailable` when it cannot be used."""
        return cls(*open_file(data_dir, kek_id))

    # ------------------------------------------------------------------ rows

    def _key(self, row: Row) -> Key:
        return Key(
            id=row[0], project_id=row[1], name=row[2], description=row[3], is_disabled=bool(row[4]),
            org_id=self._org_id, key_usage=KeyUsage(row[5]), algorithm=Algorithm(row[6]),
            version=int(row[7]), is_exportable=bool(row[8]), has_delete_protection=bool(row[9]),
            created_at=schema.from_ms(row[10]), updated_at=schema.from_ms(row[11]),
            rotation_period=int(row[12]), min_decryption_version=int(row[13]),
            min_encryption_version=int(row[14]), min_available_version=int(row[15]),
            rotated_at=None if row[16] is None else schema.from_ms(row[16]),
            derived=int(row[17]) > 0, convergent_encryption=int(row[17]) == 2,
            allow_plaintext_backup=bool(row[18]), imported=bool(row[19]), allow_rotation=bool(row[20]),
        )  # fmt: skip

    def _deleted(self, row: Row) -> DeletedKey:
        return DeletedKey(self._key(row), schema.from_ms(row[-2]), schema.from_ms(row[-1]))

    def _locked_get(self, conn: sqlite3.Connection, key_id: str) -> Key:
        row = conn.execute(_GET, (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return self._key(row)

    # ------------------------------------------------------------------ KeyStore

    async def org_id(self) -> str:
        return self._org_id

    async def ready(self) -> None:
        self._db.read_data_version()  # one real read of the database file

    async def get(self, key_id: str) -> Key | None:
        # The version is read before the row: a commit in between empties the cache next time.
        version = self._db.data_version()
        cached = self._records.get(key_id, version)
        if cached is not None:
            return cached
        rows = self._db.read(_GET, (key_id,))
        if not rows:
            return None
        key = self._key(rows[0])
        self._records.put(key, version)
        return key

    async def get_by_name(self, project_id: str, name: str) -> Key | None:
        # Cached like `get`: the Transit dialect resolves every request's key by name.
        version = self._db.data_version()
        cached = self._records.by_name(project_id, name, version)
        if cached is not None:
            return cached
        rows = self._db.read(_GET_BY_NAME, (project_id, name))
        if not rows:
            return None
        key = self._key(rows[0])
        self._records.put(key, version)
        return key

    async def list(self, query: ListQuery) -> tuple[list[Key], int]:
        if query.offset < 0 or query.limit < 0:
            raise BadRequest("offset and limit must not be negative")
        order = "DESC" if query.descending else "ASC"
        # SQLite integers are 64-bit; a larger offset or limit means "past the end" / "all".
        limit, offset = min(query.limit, _MAX_SQL_INT), min(query.offset, _MAX_SQL_INT)
        if query.search:
            pattern = "%" + query.search.lower() + "%"
            params = (query.project_id, pattern, limit, offset)
            rows = self._db.read(f"{_LIST} {order} LIMIT ? OFFSET ?", params)
            return [self._key(r) for r in rows], (int(rows[0][-1]) if rows else 0)
        version = self._db.data_version()  # read before the page: a commit after it is seen next time
        rows = self._db.read(_PAGE[order], (query.project_id, limit, offset))
        if not rows:
            return [], 0  # Infisical's count rides on the page's rows: an empty page reports 0
        return [self._key(r) for r in rows], self._count(query.project_id, version)

    def _count(self, project_id: str, version: int) -> int:
        if version != self._counts_version:
            self._counts.clear()  # someone committed: every count may be stale
            self._counts_version = version
        count = self._counts.get(project_id)
        if count is None:
            count = int(self._db.read(_COUNT, (project_id,))[0][0])
            self._counts[project_id] = count
        return count

    async def count_by_state(self) -> tuple[int, int]:
        """(enabled, disabled) key counts over every project, for the keys-by-state gauge."""
        rows = self._db.read(
            "SELECT COALESCE(SUM(is_disabled = 0), 0), COALESCE(SUM(is_disabled), 0) FROM keys", ()
        )
        return int(rows[0][0]), int(rows[0][1])

    async def versions(self, key_id: str) -> Sequence[KeyVersion]:
        """All versions of a key, newest first (empty when the key does not exist)."""
        rows = self._db.read(
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
                    "INSERT INTO keys (id, project_id, name, description, is_disabled, key_usage,"
                    " algorithm, version, is_exportable, has_delete_protection, created_at, updated_at,"
                    " rotated_at, derivation, allow_plaintext_backup, imported, allow_rotation)"
                    " VALUES (?, ?, ?, ?, 0, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key_id, spec.project_id, spec.name, spec.description, str(spec.key_usage),
                     str(spec.algorithm), int(spec.is_exportable), int(spec.has_delete_protection), now,
                     now, now, derivation_code(spec.derived, spec.convergent_encryption),
                     int(spec.allow_plaintext_backup), int(spec.imported), int(spec.allow_rotation)),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
                    raise DuplicateName(spec.name, spec.project_id) from None
                raise BadRequest(f"A key with ID {key_id} already exists") from None
            conn.execute("INSERT INTO key_versions VALUES (?, 1, ?, ?)", (key_id, sealed, now))
            return self._locked_get(conn, key_id)

        try:
            return await self._db.write(insert)
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
        is_exportable: bool | None = None,
        allow_plaintext_backup: bool | None = None,
    ) -> Key:
        changes = (
            name, description, is_disabled, has_delete_protection, is_exportable, allow_plaintext_backup
        )
        flags = tuple(
            None if f is None else int(f)
            for f in (is_disabled, has_delete_protection, is_exportable, allow_plaintext_backup)
        )

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
            return await self._db.write(change)
        finally:
            self._records.drop(key_id)

    async def delete(self, key_id: str, purge_at: datetime | None = None) -> Key:
        def remove(conn: sqlite3.Connection) -> Key:
            before = self._locked_get(conn, key_id)
            if purge_at is not None:
                # Record and material move in the same transaction the key leaves `keys` in.
                recovery.keep(conn, key_id, schema.now_ms(), schema.to_ms(purge_at))
            conn.execute("DELETE FROM keys WHERE id = ?", (key_id,))  # versions go by ON DELETE CASCADE
            return before

        try:
            return await self._db.write(remove)
        finally:
            self._records.drop(key_id)
            self._counts.clear()

    async def rotate(
        self, key_id: str, expected_version: int, sealed: bytes | None, *, at: datetime | None = None,
        imported: bool = False,
    ) -> Key:
        if sealed is None:
            raise ValueError("SqliteStore.rotate needs the sealed material of the new version")
        now = schema.now_ms() if at is None else schema.to_ms(at)

        def append(conn: sqlite3.Connection) -> Key:
            # The check and both writes share one IMMEDIATE transaction: no other writer can slip
            # a version in between, so one (key, version) never gets two materials.
            if self._locked_get(conn, key_id).version != expected_version:
                raise BadRequest("Key was rotated concurrently; retry")
            new = expected_version + 1
            conn.execute("INSERT INTO key_versions VALUES (?, ?, ?, ?)", (key_id, new, sealed, now))
            # updated_at stays: Infisical's rotation leaves the key row's updatedAt alone.
            conn.execute(
                "UPDATE keys SET version = ?, rotated_at = ?, imported = ? WHERE id = ?",
                (new, now, int(imported), key_id),
            )
            return self._locked_get(conn, key_id)

        try:
            return await self._db.write(append)
        finally:
            self._records.drop(key_id)

    # ------------------------------------------------------------------ lifecycle

    def _guarded(self, conn: sqlite3.Connection, key_id: str, expected: Generation) -> Key:
        key = self._locked_get(conn, key_id)
        if key.generation != expected:
            raise BadRequest("Key was changed concurrently; retry")
        return key

    async def set_policy(self, key_id: str, expected: Generation, wanted: Key) -> Key:
        def change(conn: sqlite3.Connection) -> Key:
            self._guarded(conn, key_id, expected)
            conn.execute(
                "UPDATE keys SET rotation_period = ?, min_decryption_version = ?,"
                " min_encryption_version = ?, updated_at = MAX(?, updated_at + 1) WHERE id = ?",
                (wanted.rotation_period, wanted.min_decryption_version, wanted.min_encryption_version,
                 schema.now_ms(), key_id),
            )  # fmt: skip
            return self._locked_get(conn, key_id)

        try:
            return await self._db.write(change)
        finally:
            self._records.drop(key_id)

    async def trim(self, key_id: str, expected: Generation, min_available: int) -> Key:
        def destroy(conn: sqlite3.Connection) -> Key:
            self._guarded(conn, key_id, expected)
            conn.execute("DELETE FROM key_versions WHERE key_id = ? AND version < ?", (key_id, min_available))
            conn.execute(
                "UPDATE keys SET min_available_version = ?, updated_at = MAX(?, updated_at + 1) WHERE id = ?",
                (min_available, schema.now_ms(), key_id),
            )
            return self._locked_get(conn, key_id)

        try:
            return await self._db.write(destroy)
        finally:
            self._records.drop(key_id)

    async def due_for_rotation(self, now: datetime) -> Sequence[Key]:
        rows = self._db.read(
            _KEY + " FROM keys WHERE rotation_period > 0 AND is_disabled = 0"
            " AND COALESCE(rotated_at, created_at) + rotation_period * 1000 <= ? ORDER BY id",
            (schema.to_ms(now),),
        )
        return [self._key(r) for r in rows]

    async def deleted(self, project_id: str) -> Sequence[DeletedKey]:
        return [self._deleted(r) for r in self._db.read(recovery.BY_PROJECT, (project_id,))]

    async def deleted_key(self, key_id: str) -> DeletedKey | None:
        rows = self._db.read(recovery.BY_ID, (key_id,))
        return self._deleted(rows[0]) if rows else None

    async def expired(self, now: datetime) -> Sequence[DeletedKey]:
        return [self._deleted(r) for r in self._db.read(recovery.EXPIRED, (schema.to_ms(now),))]

    async def restore(self, key_id: str, name: str | None) -> Key:
        def bring_back(conn: sqlite3.Connection) -> Key:
            try:
                recovery.bring_back(conn, key_id, name)
            except sqlite3.IntegrityError:
                row = conn.execute(recovery.BY_ID, (key_id,)).fetchone()
                raise DuplicateName(name or row[2], row[1]) from None
            return self._locked_get(conn, key_id)

        try:
            return await self._db.write(bring_back)
        finally:
            self._records.drop(key_id)
            self._counts.clear()

    async def purge(self, key_id: str) -> DeletedKey:
        def destroy(conn: sqlite3.Connection) -> DeletedKey:
            row = conn.execute(recovery.BY_ID, (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"Deleted key with ID {key_id} not found")
            conn.execute("DELETE FROM deleted_keys WHERE id = ?", (key_id,))  # versions by CASCADE
            return self._deleted(row)

        return await self._db.write(destroy)

    async def close(self) -> None:
        self._records.clear()
        await self._db.close()
