"""The embedded store's two connections on `<data-dir>/kubekms.db`: inline reads, serialised writes.

Point reads run inline on one read-only connection: a WAL reader never waits for writers and an
indexed lookup costs microseconds. Writes run on one dedicated thread with their own connection,
each in a `BEGIN IMMEDIATE` transaction committed with `synchronous=FULL`, so an acknowledged
write survives a crash or power loss and concurrent processes serialise on SQLite's lock
(`busy_timeout`) instead of failing. `data_version` tells callers whether any other connection,
this process's writer included, has committed since they last looked.

Security property: the file and its directory are created private (0600 / 0700) before SQLite
touches them; a data dir sealed under another kek_id is refused before anything is written;
SQLite failures reach callers as `Unavailable` with a fixed message, never as tracebacks or SQL
text.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kms_core.errors import BadRequest, Unavailable
from kms_core.stores import schema

T = TypeVar("T")
Row = tuple[Any, ...]

DB_NAME = "kubekms.db"
WRITE_BUSY_MS = 10_000
# Readers run on the event loop; a WAL reader is only ever blocked by rare recovery work, and a
# short bound keeps that from stalling every request.
READ_BUSY_MS = 1_000


def open_file(data_dir: Path, kek_id: str) -> tuple[sqlite3.Connection, sqlite3.Connection, str]:
    """Open (creating if needed) `<data_dir>/kubekms.db`; return `(reader, writer, org_id)`.

    Raise `SealerMismatch` before any write when the data dir was sealed under another kek_id,
    `Unavailable` when it cannot be used."""
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
    return reader, writer, org_id


class Database:
    """A reader connection used from the event loop and a writer connection on its own thread."""

    def __init__(self, reader: sqlite3.Connection, writer: sqlite3.Connection) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubekms-sqlite")
        self._version_cursor = reader.cursor()  # a reused cursor makes the per-request check cheaper
        self._loop_version: int | None = None  # data_version as read in this event-loop iteration

    def read(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        """All rows of one query on the reader connection, run inline."""
        if self.closed:
            raise Unavailable("The key store is closed")
        try:
            return self.reader.execute(sql, params).fetchall()
        except UnicodeEncodeError:
            return []  # text that is not valid Unicode cannot equal or match any stored value
        except sqlite3.Error as exc:
            raise schema.unavailable(exc) from None

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one IMMEDIATE transaction on the writer thread; commit before returning."""
        if self.closed:
            raise Unavailable("The key store is closed")

        def run() -> T:
            conn = self.writer
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

    def data_version(self) -> int:
        """`PRAGMA data_version`, read at most once per event-loop iteration.

        Every request served in an iteration had its bytes read by that iteration's (or an
        earlier) I/O poll, and the version is read after that poll: a commit that finished
        before a request was sent is therefore still seen by it. Under load dozens of requests
        share one iteration, and the pragma was the largest store cost per request."""
        version = self._loop_version
        if version is not None:
            return version
        version = self.read_data_version()
        try:
            asyncio.get_running_loop().call_soon(self._forget_loop_version)
        except RuntimeError:  # no running loop: nothing would forget it, so keep nothing
            return version
        self._loop_version = version
        return version

    def _forget_loop_version(self) -> None:
        self._loop_version = None

    def read_data_version(self) -> int:
        """SQLite's counter of commits made by other connections (this process's writer included)."""
        if self.closed:
            raise Unavailable("The key store is closed")
        try:
            cursor = self._version_cursor
            cursor.execute("PRAGMA data_version")
            row = cursor.fetchone()
        except sqlite3.Error as exc:
            raise schema.unavailable(exc) from None
        return int(row[0])

    async def close(self) -> None:
        """Close both connections (idempotent); later reads and writes raise `Unavailable`."""
        if self.closed:
            return
        self.closed = True
        self.reader.close()
        # Wait for queued writes, then close on the writer thread: the last connection to close
        # checkpoints the WAL into the database file.
        await asyncio.get_running_loop().run_in_executor(self._pool, self.writer.close)
        self._pool.shutdown(wait=False)
