"""A bounded cache of key records (`Key`) by id (and by project and name, for dialects that
address keys by name), valid for one observed database version.

The embedded store reads SQLite's `PRAGMA data_version` before every cached lookup. That number
changes whenever another connection commits, which covers this process's own writer connection,
other `--workers` and any other process on the same data dir. A changed version empties the
cache, so a key disabled, deleted or rotated anywhere is seen on the very next request; the
store also drops a key's entry after its own writes, so no read of a stale record can follow a
write acknowledged by this process.

Security property: records hold metadata only, never material (sealed or not), and the size
bound keeps a flood of distinct key ids from growing memory without limit.
"""

from __future__ import annotations

from typing import Final

from kms_core.batched_metrics import TALLY
from kms_core.metrics import CACHE_REQUESTS
from kms_core.model import Key

DEFAULT_SIZE: Final = 10_000

_HIT = CACHE_REQUESTS.labels(cache="key_record", result="hit")
_MISS = CACHE_REQUESTS.labels(cache="key_record", result="miss")


class KeyRecordCache:
    """Key records by id, tagged with the database version they were read under.

    Not thread-safe: the embedded store uses it from the event loop thread only."""

    __slots__ = ("_items", "_names", "_size", "_version")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self._size = size
        self._items: dict[str, Key] = {}
        self._names: dict[tuple[str, str], str] = {}  # (project, name) -> id of a cached record
        self._version: int | None = None

    def get(self, key_id: str, version: int) -> Key | None:
        """The cached record of `key_id` if the database is still at `version`, else None."""
        if version != self._version:
            # Someone committed since the entries were read: none of them can be trusted.
            self._reset(version)
            TALLY.inc(_MISS)
            return None
        key = self._items.get(key_id)
        TALLY.inc(_MISS if key is None else _HIT)
        return key

    def by_name(self, project_id: str, name: str, version: int) -> Key | None:
        """The cached record named `name` in `project_id` if the database is still at `version`."""
        if version != self._version:
            self._reset(version)
            TALLY.inc(_MISS)
            return None
        key_id = self._names.get((project_id, name))
        key = None if key_id is None else self._items.get(key_id)
        if key is not None and (key.project_id != project_id or key.name != name):
            key = None  # renamed by this process's own write (its entry was dropped and re-read)
        TALLY.inc(_MISS if key is None else _HIT)
        return key

    def _reset(self, version: int | None) -> None:
        self._items.clear()
        self._names.clear()
        self._version = version

    def put(self, key: Key, version: int) -> None:
        """Remember `key` as read while the database was at `version` (read before the row)."""
        if version != self._version:
            self._reset(version)
        if len(self._items) >= self._size and key.id not in self._items:
            # Oldest insertion first: cheap, and any evicted key costs only one more read.
            evicted = self._items.pop(next(iter(self._items)))
            self._names.pop((evicted.project_id, evicted.name), None)
        self._items[key.id] = key
        self._names[(key.project_id, key.name)] = key.id

    def drop(self, key_id: str) -> None:
        self._items.pop(key_id, None)

    def clear(self) -> None:
        self._reset(None)

    def __len__(self) -> int:
        return len(self._items)
