"""Signatures for RSA-4096, ECDSA (P-256/384/521), Ed25519/Ed25519ph and ML-DSA (spec §2.11, §5.2).

`check_arguments` raises the spec's BadRequest texts in Infisical's order; the signer classes do
the cryptography. Digest mode signs the pre-hash (`Prehashed`), so the result equals (PKCS#1 v1.5)
or verifies like (ECDSA) a signature over the original message. Security property: verification
never raises for a bad, corrupted or wrong-length signature or digest (it returns False), and no
message carries key material.
"""

from __future__ import annotations

from typing import Final, Protocol

from Crypto.Hash import SHA512
from Crypto.Signature import eddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from kms_core.algorithms import SIGNING_ALGORITHMS, SIGNING_HASH
from kms_core.errors import BadRequest
from kms_core.model import Algorithm, SigningAlgorithm
from kms_core.primitives.keys import ML_DSA, MlDsaPrivateKey, PrivateKey

S = SigningAlgorithm
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_ED25519PH_DIGEST_BYTES: Final = 64


def check_arguments(key_algorithm: Algorithm, signing_algorithm: SigningAlgorithm, is_digest: bool) -> None:
    """Raise the spec's 400 for a signing algorithm / digest flag that does not fit the key."""
    key, alg = key_algorithm.value, signing_algorithm.value
    if key_algorithm in ML_DSA:
        if alg != key:
            raise BadRequest(f"KMS {key} key can only be used with {key} signing algorithm")
        if is_digest:
            raise BadRequest("ML-DSA does not support digested input")
        return
    if signing_algorithm not in SIGNING_ALGORITHMS.get(key_algorithm, ()):
        raise BadRequest(f"KMS {key} key cannot be used with {alg}")
    if signing_algorithm is S.ED25519_PH_SHA_512 and not is_digest:
        raise BadRequest(f"{alg} requires digested input")
    if signing_algorithm is S.ED25519_SHA_512 and is_digest:
        raise BadRequest(f"{alg} does not support digested input; use {S.ED25519_PH_SHA_512.value}")
    if is_digest and alg.startswith("RSASSA_PSS"):
        raise BadRequest("RSA PSS does not support digested input")


class Signer(Protocol):
    """Signs and verifies with one private key. Arguments must have passed `check_arguments`."""

    def sign(self, signing_algorithm: SigningAlgorithm, data: bytes, is_digest: bool) -> bytes: ...

    def verify(
        self, signing_algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool
    ) -> bool: ...


def _hash(signing_algorithm: SigningAlgorithm) -> hashes.HashAlgorithm:
    return _HASHES[SIGNING_HASH[signing_algorithm]]()


def _digest_error(
    family: str, signing_algorithm: SigningAlgorithm, digest: hashes.HashAlgorithm
) -> BadRequest:
    return BadRequest(
        f"Failed to sign {family} digest with {signing_algorithm.value} due to signing error. "
        f"Ensure that your digest is hashed with {digest.name.upper()}."
    )


class RsaSigner:
    """RSASSA-PSS (salt = hash length, MGF1 with the same hash) and RSASSA-PKCS1-v1_5."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    @staticmethod
    def _padding(
        signing_algorithm: SigningAlgorithm, digest: hashes.HashAlgorithm
    ) -> padding.AsymmetricPadding:
        if signing_algorithm.value.startswith("RSASSA_PSS"):
            return padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return padding.PKCS1v15()

    def sign(self, signing_algorithm: SigningAlgorithm, data: bytes, is_digest: bool) -> bytes:
        digest = _hash(signing_algorithm)
        if is_digest and len(data) != digest.digest_size:
            raise _digest_error("RSA", signing_algorithm, digest)
        mode = utils.Prehashed(digest) if is_digest else digest
        return self._key.sign(data, self._padding(signing_algorithm, digest), mode)

    def verify(
        self, signing_algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool
    ) -> bool:
        digest = _hash(signing_algorithm)
        if is_digest and len(data) != digest.digest_size:
            return False
        mode = utils.Prehashed(digest) if is_digest else digest
        try:
            self._public.verify(signature, data, self._padding(signing_algorithm, digest), mode)
        except (InvalidSignature, ValueError):
            return False
        return True


class EcdsaSigner:
    """ECDSA with DER signatures; the hash comes from the signing algorithm, not the curve."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    def sign(self, signing_algorithm: SigningAlgorithm, data: bytes, is_digest: bool) -> bytes:
        digest = _hash(signing_algorithm)
        if is_digest and len(data) != digest.digest_size:
            raise _digest_error("ECC", signing_algorithm, digest)
        return self._key.sign(data, ec.ECDSA(utils.Prehashed(digest) if is_digest else digest))

    def verify(
        self, signing_algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool
    ) -> bool:
        digest = _hash(signing_algorithm)
        if is_digest and len(data) != digest.digest_size:
            return False
        try:
            self._public.verify(signature, data, ec.ECDSA(utils.Prehashed(digest) if is_digest else digest))
        except (InvalidSignature, ValueError):
            return False
        return True


class _Prehash(SHA512.SHA512Hash):
    """A SHA-512 hash object whose digest is a caller-supplied pre-hash.

    pycryptodome selects RFC 8032 Ed25519ph when handed a SHA512 hash object; in digest mode we
    hold only the digest, not the message, so this adapter presents it as one.
    """

    def __init__(self, digest: bytes) -> None:
        super().__init__(None, None)
        self._prehash = digest

    def digest(self) -> bytes:
        return self._prehash


class Ed25519Signer:
    """Pure Ed25519 (cryptography) and Ed25519ph with empty context (pycryptodome, RFC 8032)."""

    __slots__ = ("_key", "_ph", "_public")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        self._ph = eddsa.new(eddsa.import_private_key(key.private_bytes_raw()), "rfc8032")

    @staticmethod
    def _prehash(data: bytes) -> _Prehash:
        if len(data) != _ED25519PH_DIGEST_BYTES:
            raise BadRequest(f"{S.ED25519_PH_SHA_512.value} requires a SHA-512 digest")
        return _Prehash(data)

    def sign(self, signing_algorithm: SigningAlgorithm, data: bytes, is_digest: bool) -> bytes:
        if signing_algorithm is S.ED25519_PH_SHA_512:
            return self._ph.sign(self._prehash(data))
        return self._key.sign(data)

    def verify(
        self, signing_algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool
    ) -> bool:
        if signing_algorithm is S.ED25519_PH_SHA_512:
            prehash = self._prehash(data)  # a wrong-length digest is an argument error (spec §2.12)
            try:
                self._ph.verify(prehash, signature)
            except (ValueError, TypeError):
                return False
            return True
        try:
            self._public.verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


class MlDsaSigner:
    """Pure ML-DSA (FIPS 204) with an empty context."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: MlDsaPrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    def sign(self, signing_algorithm: SigningAlgorithm, data: bytes, is_digest: bool) -> bytes:
        return self._key.sign(data)

    def verify(
        self, signing_algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool
    ) -> bool:
        try:
            self._public.verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


def signer_for(key: PrivateKey) -> Signer:
    """The signer for a loaded private key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaSigner(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return EcdsaSigner(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    return MlDsaSigner(key)
