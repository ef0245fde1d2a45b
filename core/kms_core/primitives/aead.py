"""The symmetric AEADs as the wire uses them: AES-GCM and ChaCha20-Poly1305, 12-byte nonce,
16-byte tag, `NONCE || CT || TAG`, optional associated data.

Both dialects frame the same bytes (Infisical adds a version trailer, Transit a `vault:v<N>:`
prefix). Associated data (Transit's `associated_data`) is authenticated but not stored: the
same AAD must be given to decrypt. The Infisical dialect never passes any.

Security property: a fresh nonce per message from the OS CSPRNG (random 96-bit nonces keep the
collision risk negligible far beyond any one key's realistic volume) unless the caller supplies
one derived from the plaintext (Transit's convergent encryption, where equal plaintexts under
one derived key *should* give equal ciphertexts); every failure to open, whatever its cause, is
the single opaque `DecryptionFailed`, so callers cannot learn why.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from kms_core.errors import DecryptionFailed

IV_BYTES: Final = 12
TAG_BYTES: Final = 16
OVERHEAD: Final = IV_BYTES + TAG_BYTES
KEY_SIZES: Final = (16, 32)


class Aead:
    """One AES-GCM (or, with `chacha=True`, ChaCha20-Poly1305) key, ready to use. Stateless per
    call, hence safe to share between threads."""

    __slots__ = ("_gcm",)

    def __init__(self, key: bytes, *, chacha: bool = False) -> None:
        if chacha:
            if len(key) != 32:
                raise ValueError(f"ChaCha20-Poly1305 key must be 32 bytes, got {len(key)}")
            self._gcm: AESGCM | ChaCha20Poly1305 = ChaCha20Poly1305(key)
            return
        if len(key) not in KEY_SIZES:
            raise ValueError(f"AES-GCM key must be 16 or 32 bytes, got {len(key)}")
        self._gcm = AESGCM(key)

    def encrypt(self, plaintext: bytes, aad: bytes | None = None, nonce: bytes | None = None) -> bytes:
        """Return `NONCE || CT || TAG` (len(plaintext) + 28 bytes); `nonce` only for convergent
        encryption (12 bytes derived from the plaintext), else a random one."""
        iv = os.urandom(IV_BYTES) if nonce is None else nonce
        if len(iv) != IV_BYTES:
            raise ValueError("nonce must be 12 bytes")
        return iv + self._gcm.encrypt(iv, plaintext, aad or None)

    def decrypt(self, data: bytes, aad: bytes | None = None) -> bytes:
        """Open `NONCE || CT || TAG`; raise DecryptionFailed if it is short or does not authenticate."""
        if len(data) < OVERHEAD:
            raise DecryptionFailed()
        try:
            return self._gcm.decrypt(data[:IV_BYTES], data[IV_BYTES:], aad or None)
        except InvalidTag:
            # `from None`: the library's exception adds nothing and must not travel with ours.
            raise DecryptionFailed() from None
