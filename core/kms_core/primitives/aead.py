"""AES-GCM as the wire uses it: 12-byte random IV, 16-byte tag, no AAD, `IV || CT || TAG`.

Security property: a fresh IV per message from the OS CSPRNG (random 96-bit IVs keep the
collision risk negligible far beyond any one key's realistic volume); every failure to open,
whatever its cause, is the single opaque `DecryptionFailed`, so callers cannot learn why.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_core.errors import DecryptionFailed

IV_BYTES: Final = 12
TAG_BYTES: Final = 16
OVERHEAD: Final = IV_BYTES + TAG_BYTES
KEY_SIZES: Final = (16, 32)


class Aead:
    """One AES-GCM key, ready to use. Stateless per call, hence safe to share between threads."""

    __slots__ = ("_gcm",)

    def __init__(self, key: bytes) -> None:
        if len(key) not in KEY_SIZES:
            raise ValueError(f"AES-GCM key must be 16 or 32 bytes, got {len(key)}")
        self._gcm = AESGCM(key)

    def encrypt(self, plaintext: bytes) -> bytes:
        """Return `IV || CT || TAG` (len(plaintext) + 28 bytes)."""
        iv = os.urandom(IV_BYTES)
        return iv + self._gcm.encrypt(iv, plaintext, None)

    def decrypt(self, data: bytes) -> bytes:
        """Open `IV || CT || TAG`; raise DecryptionFailed if it is short or does not authenticate."""
        if len(data) < OVERHEAD:
            raise DecryptionFailed()
        try:
            return self._gcm.decrypt(data[:IV_BYTES], data[IV_BYTES:], None)
        except InvalidTag:
            # `from None`: the library's exception adds nothing and must not travel with ours.
            raise DecryptionFailed() from None
