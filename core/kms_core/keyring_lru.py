"""A bounded LRU of ready-to-use keyrings: one per key id, tagged with the key's generation.

A generation (`Key.generation`: current version and version bounds) decides a keyring's
contents, so a lookup with another generation misses and the caller loads afresh: a rotation or
a policy change (raising the decryption bound, trimming) takes effect on the next request.

Security property: it is the only place unsealed material is kept, in process memory only, with a
size bound; one entry per key, so material of versions a policy retired is dropped when the new
keyring replaces the old one; a deleted key is dropped explicitly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from kms_core.batched_metrics import TALLY
from kms_core.keyring import Keyring
from kms_core.metrics import CACHE_REQUESTS

Generation = tuple[int, ...]

_HIT = CACHE_REQUESTS.labels(cache="keyring", result="hit")
_MISS = CACHE_REQUESTS.labels(cache="keyring", result="miss")


class KeyringLru:
    """Thread-safe LRU; `size` bounds the number of keyrings held."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self._size = size
        self._items: OrderedDict[str, tuple[Generation, Keyring]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str, generation: Generation) -> Keyring | None:
        with self._lock:
            entry = self._items.get(key_id)
            if entry is None or entry[0] != generation:
                TALLY.inc(_MISS)
                return None
            self._items.move_to_end(key_id)
        TALLY.inc(_HIT)
        return entry[1]

    def put(self, key_id: str, generation: Generation, ring: Keyring) -> None:
        with self._lock:
            # One entry per key: the new keyring supersedes any other generation's.
            self._items[key_id] = (generation, ring)
            self._items.move_to_end(key_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key_id: str) -> None:
        with self._lock:
            self._items.pop(key_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
