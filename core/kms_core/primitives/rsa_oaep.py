"""RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label, for RSA encrypt-decrypt keys (4096, and
the Transit-only 2048 and 3072: OpenBao's rsa-* keys encrypt with the same OAEP).

The raw ciphertext (512 bytes) is what AWS KMS calls RSAES_OAEP_SHA_256, so it interoperates
after the wire's "v01" suffix is removed. Security property: every decryption failure is the
one opaque `DecryptionFailed` (no padding oracle through messages); OpenSSL's OAEP decoding is
constant-time with respect to the padding check.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kms_core.algorithms import RSA_OAEP_PLAINTEXT_LIMIT
from kms_core.errors import BadRequest, DecryptionFailed

_OAEP: Final = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

PLAINTEXT_TOO_LONG: Final = (
    f"Plaintext exceeds the {RSA_OAEP_PLAINTEXT_LIMIT}-byte limit for RSA-4096 OAEP-SHA256 encryption."
)


class RsaOaep:
    """Encrypts with the public half and decrypts with the private half of one RSA key."""

    __slots__ = ("_limit", "_private", "_public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._private = key
        self._public = key.public_key()
        # OAEP-SHA-256 carries k - 2*32 - 2 bytes (446 for RSA-4096, 190 for 2048, 318 for 3072).
        self._limit = key.key_size // 8 - 2 * 32 - 2

    def encrypt(self, plaintext: bytes) -> bytes:
        """Raw OAEP ciphertext (modulus-sized); plaintexts over the OAEP limit are a BadRequest."""
        if len(plaintext) > self._limit:
            if self._limit == RSA_OAEP_PLAINTEXT_LIMIT:
                raise BadRequest(PLAINTEXT_TOO_LONG)
            raise BadRequest(
                f"Plaintext exceeds the {self._limit}-byte limit for RSA-{self._private.key_size} "
                "OAEP-SHA256 encryption."
            )
        return self._public.encrypt(plaintext, _OAEP)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext, or DecryptionFailed for any malformed or foreign ciphertext."""
        try:
            return self._private.decrypt(ciphertext, _OAEP)
        except ValueError:
            raise DecryptionFailed() from None
