"""Random identifiers sliced from one pooled random string: request ids on the hot path without
a system call or an encoding per request.

A pool is refilled by one call (e.g. 4 KiB from the OS generator, encoded at once) and handed out
in fixed-size slices; its length is a multiple of the slice size, so no id straddles two fills.
Ids need to be unique and unguessable enough not to collide, not secret. Used from the event
loop thread; a forked worker starts a fresh pool (it must not replay its parent's remainder).

Security property: every id comes from `secrets` (the OS generator) and is used once.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["RandomPool"]


class RandomPool:
    """`take()` gives the next `size` characters of `refill()`'s string, refilling when spent."""

    def __init__(self, refill: Callable[[], str], size: int) -> None:
        self._refill = refill
        self._size = size
        self._pool = ""
        self._at = 0
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._pool, self._at = "", 0

    def take(self) -> str:
        at = self._at
        if at >= len(self._pool):
            pool = self._refill()
            if not pool or len(pool) % self._size:
                raise ValueError("a pool's length must be a positive multiple of its slice size")
            self._pool, at = pool, 0
        self._at = at + self._size
        return self._pool[at : at + self._size]
