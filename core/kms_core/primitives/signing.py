"""Signatures for RSA, ECDSA (P-256/384/521), Ed25519/Ed25519ph and ML-DSA (spec §2.11, §5.2).

The signers take a dialect-neutral `SigningOptions` (kms_core.signing_options) or one of
Infisical's `SigningAlgorithm`s, which is mapped onto options (with Infisical's digest-length
errors kept). `check_arguments` raises the spec's BadRequest texts in Infisical's order; the
signer classes do the cryptography. Digest mode signs the pre-hash (`Prehashed`), so the result
equals (PKCS#1 v1.5) or verifies like (ECDSA) a signature over the original message. ECDSA takes
a digest of any length as Go and OpenSSL do (truncated to the curve's order, or left-padded:
the same integer). Security property: verification never raises for a bad, corrupted or
wrong-length signature or digest (it returns False), and no message carries key material.
"""

from __future__ import annotations

import hashlib
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
from kms_core.signing_options import HASH_NONE, SALT_AUTO, SALT_HASH, SigningOptions, from_algorithm

S = SigningAlgorithm
How = SigningAlgorithm | SigningOptions
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}
# ECDSA digests are fed to OpenSSL through a hash of the curve's size (the hash's identity is
# not part of an ECDSA signature, only the digest's integer).
_EC_CARRIER: Final[dict[int, type[hashes.HashAlgorithm]]] = {
    32: hashes.SHA256,
    48: hashes.SHA384,
    64: hashes.SHA512,
}
RSA_DIGEST_MISMATCH: Final = "crypto/rsa: input must be hashed with given hash"
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

    def sign(self, how: How, data: bytes, is_digest: bool = False) -> bytes: ...

    def verify(self, how: How, data: bytes, signature: bytes, is_digest: bool = False) -> bool: ...


def _hash(signing_algorithm: SigningAlgorithm) -> hashes.HashAlgorithm:
    return _HASHES[SIGNING_HASH[signing_algorithm]]()


def _options(how: How, is_digest: bool) -> SigningOptions:
    """Options as given, or Infisical's algorithm mapped (`is_digest` only matters for it)."""
    return how if isinstance(how, SigningOptions) else from_algorithm(how, is_digest)


def _hash_of(options: SigningOptions) -> hashes.HashAlgorithm:
    return _HASHES[options.hash]()


def _digest_error(
    family: str, signing_algorithm: SigningAlgorithm, digest: hashes.HashAlgorithm
) -> BadRequest:
    return BadRequest(
        f"Failed to sign {family} digest with {signing_algorithm.value} due to signing error. "
        f"Ensure that your digest is hashed with {digest.name.upper()}."
    )


class RsaSigner:
    """RSASSA-PSS (MGF1 with the message hash; the salt per `SigningOptions.salt`) and
    RSASSA-PKCS1-v1_5 (with DigestInfo, or without one for hash `none`)."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    @staticmethod
    def _padding(options: SigningOptions, signing: bool) -> padding.AsymmetricPadding:
        if not options.pss:
            return padding.PKCS1v15()
        salt: int | padding._MaxLength | padding._Auto | padding._DigestLength
        if options.salt == SALT_AUTO:  # Go's PSSSaltLengthAuto: the largest salt, any on verify
            salt = padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO
        elif options.salt == SALT_HASH:
            salt = padding.PSS.DIGEST_LENGTH
        else:
            salt = options.salt
        return padding.PSS(mgf=padding.MGF1(_hash_of(options)), salt_length=salt)

    @staticmethod
    def _mode(options: SigningOptions) -> hashes.HashAlgorithm | utils.Prehashed | utils.NoDigestInfo:
        if options.hash == HASH_NONE:
            return utils.NoDigestInfo()
        digest = _hash_of(options)
        return utils.Prehashed(digest) if options.prehashed else digest

    @staticmethod
    def _check(options: SigningOptions, data: bytes) -> bool:
        """Whether the arguments fit: `none` is PKCS#1 v1.5 over a given digest only, and a
        digest has its hash's length."""
        if options.hash == HASH_NONE:
            return options.prehashed and not options.pss
        return not options.prehashed or len(data) == _hash_of(options).digest_size

    def sign(self, how: How, data: bytes, is_digest: bool = False) -> bytes:
        options = _options(how, is_digest)
        if not self._check(options, data):
            if isinstance(how, SigningAlgorithm):
                raise _digest_error("RSA", how, _hash(how))
            raise BadRequest(RSA_DIGEST_MISMATCH)
        try:
            return self._key.sign(data, self._padding(options, True), self._mode(options))
        except ValueError:  # a salt longer than the key allows (or a too long raw input)
            if options.pss and options.salt >= 0:
                raise BadRequest(f"requested salt length {options.salt} is invalid") from None
            raise BadRequest("message too long for RSA key size") from None

    def verify(self, how: How, data: bytes, signature: bytes, is_digest: bool = False) -> bool:
        options = _options(how, is_digest)
        if not self._check(options, data):
            return False
        try:
            # cryptography's stub omits NoDigestInfo for verify; the runtime accepts it.
            mode: utils.Prehashed | hashes.HashAlgorithm = self._mode(options)  # type: ignore[assignment]
            self._public.verify(signature, data, self._padding(options, False), mode)
        except (InvalidSignature, ValueError):
            return False
        return True


class EcdsaSigner:
    """ECDSA with DER signatures; the hash comes from the options, not the curve."""

    __slots__ = ("_bits", "_key", "_public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        self._bits = key.curve.key_size

    def _digest(self, options: SigningOptions, data: bytes) -> bytes | None:
        """The digest as the curve's carrier size: Go's and OpenSSL's truncation to the order's
        bit length, or left zero padding (the same integer). None: a P-521 digest whose integer
        does not fit a 64-byte carrier (over 64 bytes, so no hash KubeKMS offers makes one)."""
        if options.prehashed or options.hash == HASH_NONE:
            digest = data
        else:
            digest = hashlib.new(options.hash, data).digest()
        order_bytes = (self._bits + 7) // 8
        carrier = min(order_bytes, 64)
        digest = digest[:order_bytes]
        if len(digest) <= carrier:
            return digest.rjust(carrier, b"\0")
        value = int.from_bytes(digest) >> max(0, len(digest) * 8 - self._bits)
        if value.bit_length() > carrier * 8:
            return None
        return value.to_bytes(carrier)

    def _infisical_check(self, how: How, data: bytes, is_digest: bool) -> None:
        if isinstance(how, SigningAlgorithm) and is_digest and len(data) != _hash(how).digest_size:
            raise _digest_error("ECC", how, _hash(how))

    def sign(self, how: How, data: bytes, is_digest: bool = False) -> bytes:
        self._infisical_check(how, data, is_digest)
        digest = self._digest(_options(how, is_digest), data)
        if digest is None:
            raise BadRequest("a P-521 digest longer than 64 bytes is not supported")
        return self._key.sign(digest, ec.ECDSA(utils.Prehashed(_EC_CARRIER[len(digest)]())))

    def verify(self, how: How, data: bytes, signature: bytes, is_digest: bool = False) -> bool:
        if isinstance(how, SigningAlgorithm) and is_digest and len(data) != _hash(how).digest_size:
            return False
        digest = self._digest(_options(how, is_digest), data)
        if digest is None:
            return False
        try:
            self._public.verify(signature, digest, ec.ECDSA(utils.Prehashed(_EC_CARRIER[len(digest)]())))
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

    def sign(self, how: How, data: bytes, is_digest: bool = False) -> bytes:
        if _options(how, is_digest).prehashed:  # Ed25519ph (Infisical's ED25519_PH_SHA_512)
            return self._ph.sign(self._prehash(data))
        return self._key.sign(data)

    def verify(self, how: How, data: bytes, signature: bytes, is_digest: bool = False) -> bool:
        if _options(how, is_digest).prehashed:
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

    def sign(self, how: How, data: bytes, is_digest: bool = False) -> bytes:
        return self._key.sign(data)

    def verify(self, how: How, data: bytes, signature: bytes, is_digest: bool = False) -> bool:
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
