"""The ciphertext wire layout (spec §5.1): a raw ciphertext plus the v01 / v02 version trailer.

- version 1: `raw || "v01"` (len(raw) + 3); byte-identical to what never-rotated keys produce;
- version n > 1: `raw || uint32_be(n) || "v02"` (len(raw) + 7).

Security property: the trailer is not authenticated (the AEAD has no AAD, as the wire demands);
it is only a hint for which key version to try first, so tampering with it can change which
versions are tried, never what authenticates.
"""

from __future__ import annotations

from typing import Final

V01: Final = b"v01"
V02: Final = b"v02"
SUFFIX_BYTES: Final = 3
VERSION_BYTES: Final = 4
# A v02 blob is at least IV(12) + TAG(16) + version(4) + "v02"(3); shorter ones are read as v01.
V02_MIN_BYTES: Final = 35
MAX_VERSION: Final = 2**32 - 1


def pack(raw: bytes, version: int) -> bytes:
    """Append the trailer for `version` (v01 for 1, v02 with the big-endian version otherwise)."""
    if not 1 <= version <= MAX_VERSION:
        raise ValueError(f"key version must be between 1 and {MAX_VERSION}, got {version}")
    if version == 1:
        return raw + V01
    return raw + version.to_bytes(VERSION_BYTES, "big") + V02


def unpack(blob: bytes) -> tuple[bytes, int | None]:
    """Split a blob into (raw ciphertext, embedded version or None for v01/legacy).

    v02 only when the last 3 bytes are "v02" and the blob is at least 35 bytes; otherwise the
    last 3 bytes are stripped unchecked (as the reference implementation does).
    """
    if blob[-SUFFIX_BYTES:] == V02 and len(blob) >= V02_MIN_BYTES:
        end = len(blob) - SUFFIX_BYTES - VERSION_BYTES
        return blob[:end], int.from_bytes(blob[end : end + VERSION_BYTES], "big")
    return blob[: max(len(blob) - SUFFIX_BYTES, 0)], None
