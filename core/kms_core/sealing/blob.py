"""The sealed-blob layout shared by every sealer.

    format (1 byte, 0x01) | len(kek_id) (1 byte) | kek_id (ascii hex) | nonce (12) | ciphertext+tag (>= 16)

The header is in the clear so a store can tell which key-encryption key sealed a blob without
unsealing it. Security property: `parse` checks every bound before slicing and reports any
malformed input as `UnsealError` (never `IndexError` or `ValueError`), so a truncated or forged
blob can only ever fail the way a wrong key fails.
"""

from __future__ import annotations

from kms_core.sealing.base import UnsealError

FORMAT_V1 = 0x01
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_KEK_ID_LEN = 64

_HEX = frozenset("0123456789abcdef")


def _check_kek_id(kek_id: str) -> None:
    if not 0 < len(kek_id) <= MAX_KEK_ID_LEN or not set(kek_id) <= _HEX:
        raise ValueError(f"kek_id must be 1..{MAX_KEK_ID_LEN} lowercase hex characters")


def pack(kek_id: str, nonce: bytes, ct: bytes) -> bytes:
    """Lay out a sealed blob; `ct` is the AEAD output (ciphertext followed by its 16-byte tag)."""
    _check_kek_id(kek_id)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    if len(ct) < TAG_SIZE:
        raise ValueError(f"ciphertext must include a {TAG_SIZE}-byte tag")
    return bytes((FORMAT_V1, len(kek_id))) + kek_id.encode("ascii") + nonce + ct


def _header(blob: bytes) -> tuple[str, int]:
    """Return (kek_id, offset of the nonce); raise UnsealError unless the header is well formed."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise UnsealError("sealed blob is not bytes")
    blob = bytes(blob)
    if len(blob) < 2:
        raise UnsealError("sealed blob is truncated")
    if blob[0] != FORMAT_V1:
        raise UnsealError(f"unknown sealed blob format 0x{blob[0]:02x}")
    id_len = blob[1]
    end = 2 + id_len
    if id_len == 0 or id_len > MAX_KEK_ID_LEN or len(blob) < end:
        raise UnsealError("sealed blob has a malformed kek id")
    raw = blob[2:end]
    # Decode byte by byte against the hex alphabet: a non-ASCII header must not raise UnicodeError.
    if not all(chr(b) in _HEX for b in raw):
        raise UnsealError("sealed blob has a malformed kek id")
    return raw.decode("ascii"), end


def parse(blob: bytes) -> tuple[str, bytes, bytes]:
    """Split a sealed blob into (kek_id, nonce, ciphertext+tag), or raise UnsealError."""
    kek_id, offset = _header(blob)
    blob = bytes(blob)
    if len(blob) < offset + NONCE_SIZE + TAG_SIZE:
        raise UnsealError("sealed blob is truncated")
    nonce = blob[offset : offset + NONCE_SIZE]
    return kek_id, nonce, blob[offset + NONCE_SIZE :]


def blob_kek_id(blob: bytes) -> str:
    """The kek_id recorded in a sealed blob's header (UnsealError if the blob is malformed)."""
    return parse(blob)[0]


def check_kek_id(expected: str, found: str) -> None:
    """Raise UnsealError naming both ids when a blob was sealed under another KEK.

    Only ids are named: they are digests, never key material.
    """
    if found != expected:
        raise UnsealError(
            f"sealed blob was sealed under kek_id {found}, but this sealer's kek_id is {expected}"
        )
