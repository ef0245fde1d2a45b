"""A sealer whose key-encryption key is a 32-byte root key held in process memory.

The root key comes from `ROOT_ENCRYPTION_KEY` (base64, Infisical's variable) or, in embedded mode,
from `<data-dir>/root.key`. Sealing is AES-256-GCM with a fresh random 96-bit nonce per blob and
the caller's AAD (see `material_aad`).

Security property: the root key is never logged, echoed in errors or returned; `kek_id` is the
first 8 bytes of SHA-256(root key), which identifies the key without revealing it. Every failure
to unseal (wrong key, wrong AAD, tampering, malformed blob) is an `UnsealError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_core.errors import ConfigError, Unavailable
from kms_core.sealing import blob as blob_format
from kms_core.sealing.base import UnsealError

ROOT_KEY_SIZE = 32


def root_kek_id(key: bytes) -> str:
    """The public identifier of a root key: hex of the first 8 bytes of SHA-256(key)."""
    return hashlib.sha256(key).digest()[:8].hex()


def decode_root_key(value: str, source: str = "ROOT_ENCRYPTION_KEY") -> bytes:
    """Strictly decode base64 of exactly 32 bytes; ConfigError naming `source` (never the value)."""
    text = value.strip()
    try:
        key = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        # `from None`: the binascii message can quote offending characters of the secret.
        raise ConfigError(
            f"{source} is not valid base64; expected the base64 encoding of {ROOT_KEY_SIZE} random "
            "bytes (e.g. `openssl rand -base64 32`)"
        ) from None
    if len(key) != ROOT_KEY_SIZE:
        raise ConfigError(
            f"{source} must decode to exactly {ROOT_KEY_SIZE} bytes, got {len(key)} bytes "
            "(generate one with `openssl rand -base64 32`)"
        )
    return key


class RootKeySealer:
    """AES-256-GCM sealing under a root key. Thread-safe: the AEAD object is stateless."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != ROOT_KEY_SIZE:
            size = len(key) if isinstance(key, bytes) else "non-bytes"
            raise ConfigError(f"the root key must be exactly {ROOT_KEY_SIZE} bytes, got {size}")
        self._aead: AESGCM | None = AESGCM(key)
        self._kek_id = root_kek_id(key)

    @classmethod
    def from_base64(cls, value: str, source: str = "ROOT_ENCRYPTION_KEY") -> RootKeySealer:
        """Build from a base64 string; errors name `source`, never the value."""
        return cls(decode_root_key(value, source))

    @property
    def kek_id(self) -> str:
        return self._kek_id

    @property
    def backend(self) -> str:
        return "rootkey"

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            raise Unavailable("the root key sealer is closed")
        return self._aead

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(blob_format.NONCE_SIZE)
        return blob_format.pack(self._kek_id, nonce, self._cipher().encrypt(nonce, plaintext, aad))

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        kek_id, nonce, ct = blob_format.parse(blob)
        blob_format.check_kek_id(self._kek_id, kek_id)
        try:
            return self._cipher().decrypt(nonce, ct, aad)
        except InvalidTag:
            raise UnsealError(
                f"sealed blob does not authenticate under kek_id {self._kek_id} with this AAD"
            ) from None

    def close(self) -> None:
        """Drop the AEAD object (and with it this object's reference to the key). Idempotent."""
        self._aead = None

    def __repr__(self) -> str:
        return f"RootKeySealer(kek_id={self._kek_id!r})"
