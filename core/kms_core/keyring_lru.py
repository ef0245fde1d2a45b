"""A bounded LRU of ready-to-use keyrings, keyed by (key id, version).

Security property: it is the only place unsealed material is kept, in process memory only, with a
size bound; a (key id, version) pair always denotes the same material, so entries never go stale
(a rotation creates a new version and so a new entry; a deleted key is dropped explicitly).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from kms_core.batched_metrics import TALLY
from kms_core.keyring import Keyring
from kms_core.metrics import CACHE_REQUESTS

_HIT = CACHE_REQUESTS.labels(cache="keyring", result="hit")
_MISS = CACHE_REQUESTS.labels(cache="keyring", result="miss")


class KeyringLru:
    """Thread-safe LRU; `size` bounds the number of keyrings held."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self._size = size
        self._items: OrderedDict[tuple[str, int], Keyring] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str, version: int) -> Keyring | None:
        with self._lock:
            ring = self._items.get((key_id, version))
            if ring is None:
                TALLY.inc(_MISS)
                return None
            self._items.move_to_end((key_id, version))
        TALLY.inc(_HIT)
        return ring

    def put(self, key_id: str, version: int, ring: Keyring) -> None:
        with self._lock:
            # Older versions' keyrings are superseded: the new one holds every version.
            for stale in [k for k in self._items if k[0] == key_id and k[1] < version]:
                del self._items[stale]
            self._items[(key_id, version)] = ring
            self._items.move_to_end((key_id, version))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key_id: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[0] == key_id]:
                del self._items[k]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
