"""HMAC (RFC 2104) with SHA-1/224/256/384/512; the MAC is the raw digest.

Security property: verification compares in constant time (`hmac.compare_digest`), and a MAC
of the wrong length is simply unequal, so neither timing nor errors reveal how close a guess was.
"""

from __future__ import annotations

import hmac

from kms_core.algorithms import HMAC_HASH
from kms_core.model import Algorithm


class Hmac:
    """One HMAC key bound to its hash; immutable and safe to share between threads."""

    __slots__ = ("_hash", "_key")

    def __init__(self, algorithm: Algorithm, key: bytes) -> None:
        if algorithm not in HMAC_HASH:
            raise ValueError(f"{algorithm} is not an HMAC algorithm")
        if not key:
            raise ValueError("HMAC key must not be empty")
        self._hash = HMAC_HASH[algorithm]
        self._key = key

    def generate(self, data: bytes) -> bytes:
        """The raw HMAC of `data` (20/28/32/48/64 bytes)."""
        # hmac.digest is the one-shot OpenSSL path: no per-call Python HMAC object.
        return hmac.digest(self._key, data, self._hash)

    def verify(self, data: bytes, mac: bytes) -> bool:
        """Whether `mac` is the HMAC of `data`, compared in constant time."""
        return hmac.compare_digest(self.generate(data), mac)
