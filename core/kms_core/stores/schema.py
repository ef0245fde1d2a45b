"""The embedded store's database file: connection settings, ordered migrations, identity, errors.

Migrations are append-only: each entry of `MIGRATIONS` is applied once, in order, inside the same
`BEGIN IMMEDIATE` transaction that records it in `schema_version`, so a crash or a concurrent
opener never leaves a half-migrated file. The `meta` table pins the data dir's `org_id` (a UUID
made once) and the `kek_id` that seals its material. `ilike` is the SQL function behind list
search.

Security property: a process whose sealer has another `kek_id` is refused (`SealerMismatch`)
before this module writes a single byte, so a wrong root key can never mix foreign material into
the store or take ownership of it. SQLite failures become `Unavailable` with a fixed message;
the SQLite detail (never containing bound values, hence never material) goes to the log only.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kms_core.errors import ConfigError, SealerMismatch, Unavailable

log = logging.getLogger("kubekms.store.sqlite")

# Each migration is a tuple of single statements: `executescript` would commit implicitly and
# break the one-transaction guarantee. Never edit a released entry; append a new one instead.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE meta (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        # Timestamps are integer milliseconds since the epoch (UTC): exact, sortable, and the
        # precision of the wire format (JavaScript Date.toJSON()).
        """CREATE TABLE keys (
            id                    TEXT PRIMARY KEY,
            project_id            TEXT NOT NULL,
            name                  TEXT NOT NULL,
            description           TEXT,
            is_disabled           INTEGER NOT NULL DEFAULT 0 CHECK (is_disabled IN (0, 1)),
            key_usage             TEXT NOT NULL,
            algorithm             TEXT NOT NULL,
            version               INTEGER NOT NULL CHECK (version >= 1),
            is_exportable         INTEGER NOT NULL CHECK (is_exportable IN (0, 1)),
            has_delete_protection INTEGER NOT NULL CHECK (has_delete_protection IN (0, 1)),
            created_at            INTEGER NOT NULL,
            updated_at            INTEGER NOT NULL,
            UNIQUE (project_id, name)
        )""",
        """CREATE TABLE key_versions (
            key_id     TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
            version    INTEGER NOT NULL CHECK (version >= 1),
            sealed     BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (key_id, version)
        )""",
    ),
    (
        # Lifecycle policy (kms_core.lifecycle); the defaults keep old keys as they were.
        "ALTER TABLE keys ADD COLUMN rotation_period INTEGER NOT NULL DEFAULT 0 CHECK (rotation_period >= 0)",
        "ALTER TABLE keys ADD COLUMN min_decryption_version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE keys ADD COLUMN min_encryption_version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE keys ADD COLUMN min_available_version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE keys ADD COLUMN rotated_at INTEGER",
        # A key rotated before this migration is measured from its newest version, so the first
        # scheduled rotation does not come early.
        "UPDATE keys SET rotated_at = (SELECT MAX(created_at) FROM key_versions WHERE key_id = keys.id)",
        "CREATE INDEX keys_with_rotation ON keys (rotation_period) WHERE rotation_period > 0",
        # Keys deleted within their recovery window: out of every read of `keys` (and of its
        # unique names), material intact until the purge.
        """CREATE TABLE deleted_keys (
            id                     TEXT PRIMARY KEY,
            project_id             TEXT NOT NULL,
            name                   TEXT NOT NULL,
            description            TEXT,
            is_disabled            INTEGER NOT NULL,
            key_usage              TEXT NOT NULL,
            algorithm              TEXT NOT NULL,
            version                INTEGER NOT NULL,
            is_exportable          INTEGER NOT NULL,
            has_delete_protection  INTEGER NOT NULL,
            created_at             INTEGER NOT NULL,
            updated_at             INTEGER NOT NULL,
            rotation_period        INTEGER NOT NULL,
            min_decryption_version INTEGER NOT NULL,
            min_encryption_version INTEGER NOT NULL,
            min_available_version  INTEGER NOT NULL,
            rotated_at             INTEGER,
            deleted_at             INTEGER NOT NULL,
            purge_at               INTEGER NOT NULL
        )""",
        "CREATE INDEX deleted_keys_by_project ON deleted_keys (project_id, name)",
        "CREATE INDEX deleted_keys_by_purge ON deleted_keys (purge_at)",
        """CREATE TABLE deleted_key_versions (
            key_id     TEXT NOT NULL REFERENCES deleted_keys (id) ON DELETE CASCADE,
            version    INTEGER NOT NULL,
            sealed     BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (key_id, version)
        )""",
    ),
    (
        # Transit's key derivation (kms_core.derivation): 0 none, 1 derived (HKDF-SHA256 with the
        # request's context), 2 derived with convergent encryption (OpenBao's version 3).
        "ALTER TABLE keys ADD COLUMN derivation INTEGER NOT NULL DEFAULT 0 CHECK (derivation IN (0, 1, 2))",
        "ALTER TABLE deleted_keys ADD COLUMN derivation INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # Transit's backup and import flags (kms_core.model.Key); the defaults are what every
        # key made before them was: no plaintext backup, generated material.
        "ALTER TABLE keys ADD COLUMN allow_plaintext_backup INTEGER NOT NULL DEFAULT 0"
        " CHECK (allow_plaintext_backup IN (0, 1))",
        "ALTER TABLE keys ADD COLUMN imported INTEGER NOT NULL DEFAULT 0 CHECK (imported IN (0, 1))",
        "ALTER TABLE keys ADD COLUMN allow_rotation INTEGER NOT NULL DEFAULT 0"
        " CHECK (allow_rotation IN (0, 1))",
        "ALTER TABLE deleted_keys ADD COLUMN allow_plaintext_backup INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deleted_keys ADD COLUMN imported INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deleted_keys ADD COLUMN allow_rotation INTEGER NOT NULL DEFAULT 0",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    """The current time as stored: integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_ms(moment: datetime) -> int:
    """A timezone-aware datetime as stored (integer milliseconds since the epoch)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """A stored timestamp as a timezone-aware UTC datetime (millisecond precision, exact)."""
    return _EPOCH + timedelta(milliseconds=ms)


def recorded_kek_id(conn: sqlite3.Connection) -> str | None:
    """The kek_id stored in `meta`, or None for a data dir that has not been initialised yet."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE name = 'kek_id'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None else str(row[0])


def _current_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    return int(row[0] or 0)


def initialise(conn: sqlite3.Connection, kek_id: str) -> tuple[str, str]:
    """Migrate `conn`'s database and record its identity; return `(org_id, kek_id)`.

    `conn` must be in autocommit mode (`isolation_level=None`). Everything happens in one
    `BEGIN IMMEDIATE` transaction: concurrent openers of a fresh dir serialise on it and the
    `INSERT OR IGNORE`s make every one of them read back the same org_id and kek_id. The kek_id
    check comes first, and the transaction is rolled back (nothing written) when it fails.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        recorded = recorded_kek_id(conn)
        if recorded is not None and recorded != kek_id:
            raise SealerMismatch(recorded, kek_id)
        current = _current_version(conn)
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"the data dir uses schema version {current}, newer than this KubeKMS "
                f"({SCHEMA_VERSION}); upgrade KubeKMS instead of downgrading the data"
            )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
        )
        applied = now_ms()
        for number, statements in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (number, applied))
        conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('org_id', ?), ('kek_id', ?)",
            (str(uuid.uuid4()), kek_id),
        )
        rows = dict(conn.execute("SELECT name, value FROM meta WHERE name IN ('org_id', 'kek_id')"))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return str(rows["org_id"]), str(rows["kek_id"])


def unavailable(exc: sqlite3.Error) -> Unavailable:
    """A fixed, client-safe message for a SQLite failure; the detail goes to the log only."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    log.warning("sqlite error: %s (%s)", exc, getattr(exc, "sqlite_errorname", type(exc).__name__))
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return Unavailable("The key store is busy; retry")
    if code == sqlite3.SQLITE_FULL:
        return Unavailable("The key store cannot write: the disk is full")
    if code == sqlite3.SQLITE_READONLY:
        return Unavailable("The key store is read-only; check the data directory's permissions")
    if code == sqlite3.SQLITE_CANTOPEN:
        return Unavailable("The key store file cannot be opened; check the data directory")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return Unavailable("The key store file is damaged; restore it from a backup")
    return Unavailable("The key store is unavailable")


def connect(path: Path, busy_ms: int) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) with durable commits and FK checks."""
    conn = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def use_wal(conn: sqlite3.Connection, busy_ms: int) -> None:
    """Switch the database to WAL journaling (a no-op once done: the mode is stored in the file).

    Switching needs an exclusive lock and SQLite answers SQLITE_BUSY at once, without its busy
    handler, while another process holds any lock; so concurrent first opens retry here.
    """
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            break
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    if mode.lower() != "wal":
        raise Unavailable(f"The key store cannot use WAL journaling (got {mode})")


def precheck_kek(db: Path, kek_id: str) -> None:
    """Compare kek_ids through a read-only connection, so a mismatch leaves the file untouched.

    Without a WAL file the database is opened `immutable` (no lock or -shm files are created).
    Any error here is ignored: `initialise` repeats the check under the write lock.
    """
    try:
        if db.stat().st_size == 0:
            return
    except FileNotFoundError:
        return
    immutable = "" if db.with_name(db.name + "-wal").exists() else "&immutable=1"
    recorded: str | None = None
    try:
        conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro{immutable}", uri=True)
        try:
            recorded = recorded_kek_id(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return
    if recorded is not None and recorded != kek_id:
        raise SealerMismatch(recorded, kek_id)


def ilike(name: str | None, pattern: str | None) -> bool:
    """SQL `name ILIKE pattern` (registered as `kms_ilike`): `%` matches any run, `_` one character.

    `pattern` must already be lower-case. Unlike SQLite's LIKE this folds non-ASCII case too, as
    PostgreSQL's ILIKE does, and it never raises: no pattern is "too complex". Greedy matching
    with one backtrack point is O(len(name) * len(pattern)) at worst, and a pattern needing more
    characters than the name has is rejected at once, so hostile patterns cost little.
    """
    if name is None or pattern is None:
        return False
    text = name.lower()
    if len(pattern) - pattern.count("%") > len(text):
        return False
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "%":
            star, mark = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("_", text[t]):
            p += 1
            t += 1
        elif star >= 0:
            p, mark = star + 1, mark + 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "%":
        p += 1
    return p == len(pattern)
