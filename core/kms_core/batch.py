"""One item of a batch operation (Transit's `batch_input`): what `KeyService.encrypt_many`
encrypts per item, under the one key the whole batch names.

Security property: an item holds the caller's plaintext only until the core encrypts it; an
item's failure is returned as its own `KmsError` (whose text names no value), so one bad item
neither fails the batch nor tells anything about the others.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EncryptItem"]


class EncryptItem(NamedTuple):
    """`plaintext` to encrypt under `version` (None: the latest), with the AEAD's associated data
    `aad` and a derived key's `context` (kms_core.derivation), as `KeyService.encrypt` takes them.
    A tuple: made once per item on the hot path, where a frozen dataclass costs twice as much."""

    plaintext: bytes
    version: int | None = None
    aad: bytes | None = None
    context: bytes | None = None
