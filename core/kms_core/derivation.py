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

A derived Ed25519 key (OpenBao's `DeriveKey` for `ed25519`) signs with the key whose 32-byte seed
is `HKDF-SHA256(ikm=seed ‖ public key, salt=none, info=context)`: the input keying material is
the version's whole 64-byte Go private key, which is what OpenBao stores and what its
`export/signing-key` returns, so a key moved from OpenBao signs alike (`derive_ed25519`). Each
context has its own public key; the version's own key pair never signs.

Security property: the material and the derived keys only pass through here into AEAD and
signing objects; the context is not secret but is the key's selector, so a missing one is
refused, never defaulted.
"""

from __future__ import annotations

import hmac
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms_core.algorithms import AEADS, Primitive, spec_of
from kms_core.errors import BadRequest
from kms_core.model import Algorithm

__all__ = [
    "CONVERGENT_HMAC_BYTES",
    "MISSING_CONTEXT",
    "check_derivable",
    "convergent_nonce",
    "derivation_code",
    "derive",
    "derive_ed25519",
    "is_derivable",
]

CONVERGENT_HMAC_BYTES: Final = 32
NONCE_BYTES: Final = 12
ED25519_SEED_BYTES: Final = 32
_RAW: Final = serialization.Encoding.Raw
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


def is_derivable(algorithm: Algorithm) -> bool:
    """Whether `algorithm` may be `derived`: the AEADs and Ed25519 (OpenBao's
    `DerivationSupported`); any other kind would silently use its plain material."""
    return spec_of(algorithm).primitive in (*AEADS, Primitive.ED25519)


def check_derivable(algorithm: Algorithm, derived: bool, convergent: bool) -> None:
    """BadRequest unless the flags suit `algorithm`: derivation for `is_derivable` keys,
    convergent encryption (which needs derivation) for AEAD keys only."""
    derivation_code(derived, convergent)
    if derived and not is_derivable(algorithm):
        raise BadRequest(f"key derivation is not supported for {algorithm.value} keys")
    if convergent and spec_of(algorithm).primitive not in AEADS:
        raise BadRequest(f"convergent encryption is not supported for {algorithm.value} keys")


def derive(material: bytes, context: bytes | None, length: int) -> bytes:
    """`length` bytes of HKDF-SHA256 over `material` with `context` as info (no salt)."""
    if not context:
        raise BadRequest(MISSING_CONTEXT)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=context).derive(material)


def convergent_nonce(hmac_key: bytes, plaintext: bytes) -> bytes:
    """OpenBao's convergent version 3 nonce: HMAC-SHA256(hmac key, plaintext), first 12 bytes."""
    return hmac.digest(hmac_key, plaintext, "sha256")[:NONCE_BYTES]


def derive_ed25519(private: ed25519.Ed25519PrivateKey, context: bytes | None) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key `context` selects under a derived key version whose key pair is `private`
    (OpenBao: `ed25519.GenerateKey` reading the HKDF stream, i.e. the stream's first 32 bytes are
    the seed); MISSING_CONTEXT without a context."""
    seed = private.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    # OpenBao keys HKDF with Go's 64-byte private key (seed ‖ public), not the seed alone.
    return ed25519.Ed25519PrivateKey.from_private_bytes(derive(seed + public, context, ED25519_SEED_BYTES))
