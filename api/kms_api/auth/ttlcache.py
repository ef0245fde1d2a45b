"""A bounded cache whose entries expire: token reviews and access decisions for a few seconds.

Security property: callers key entries by a SHA-256 digest of the token (`token_digest`), never by
the token, so a heap dump or a debug print of the cache shows no credential. Expiry bounds how
long a revoked token or a removed RoleBinding keeps working; the size bound keeps a flood of
distinct tokens from growing memory without limit (oldest entries go first).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def token_digest(token: str) -> str:
    """The cache key of a bearer token: hex SHA-256 (not reversible, safe to hold in memory)."""
    return hashlib.sha256(token.encode()).hexdigest()


class TtlCache(Generic[K, V]):
    """LRU with a per-entry deadline. Not thread-safe: used from one event loop."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline, value = entry
        if self._clock() >= deadline:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if self.ttl == 0:
            return  # caching disabled
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
