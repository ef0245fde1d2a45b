"""Transit's key derivation and convergent encryption, exactly as OpenBao computes them.

A `derived` key never encrypts with its stored material: each request's `context` selects the
key `HKDF-SHA256(ikm=material, salt=none, info=context)` of the AEAD's key size (OpenBao's
`kdf: hkdf_sha256`, sdk/helper/keysutil `DeriveKey`). A `convergent_encryption` key (OpenBao's
convergent version 3) derives `key size + 32` bytes instead: the first part is the AEAD key, the
last 32 are an HMAC-SHA256 key, and the nonce is `HMAC(hmac key, plaintext)[:12]`, so the same
plaintext under the same context always gives the same ciphertext (that is its purpose: it leaks
equality of plaintexts within one context, and nothing across contexts).

HKDF's output is prefix-consistent, so decryption derives the AEAD key alone. The store keeps
both flags as one code (`derivation_code`).

Security property: the material and the derived keys only pass through here into AEAD objects;
the context is not secret but is the key's selector, so a missing one is refused, never defaulted.
"""

from __future__ import annotations

import hmac
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms_core.errors import BadRequest

__all__ = [
    "CONVERGENT_HMAC_BYTES",
    "MISSING_CONTEXT",
    "convergent_nonce",
    "derivation_code",
    "derive",
]

CONVERGENT_HMAC_BYTES: Final = 32
NONCE_BYTES: Final = 12
# OpenBao's text, word for word.
MISSING_CONTEXT: Final = (
    "missing 'context' for key derivation; the key was created using a derived key, which means "
    "additional, per-request information must be included in order to perform operations with the key"
)


def derivation_code(derived: bool, convergent: bool) -> int:
    """The stored form: 0 none, 1 derived, 2 derived with convergent encryption."""
    if convergent and not derived:
        raise BadRequest("convergent encryption requires derivation to be enabled")
    return 2 if convergent else int(derived)


def derive(material: bytes, context: bytes | None, length: int) -> bytes:
    """`length` bytes of HKDF-SHA256 over `material` with `context` as info (no salt)."""
    if not context:
        raise BadRequest(MISSING_CONTEXT)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=context).derive(material)


def convergent_nonce(hmac_key: bytes, plaintext: bytes) -> bytes:
    """OpenBao's convergent version 3 nonce: HMAC-SHA256(hmac key, plaintext), first 12 bytes."""
    return hmac.digest(hmac_key, plaintext, "sha256")[:NONCE_BYTES]
