"""Private-key objects for the asymmetric algorithms: generation, loading and encodings.

Serialized material for RSA, EC, Ed25519 and ML-DSA keys is PKCS#8 DER; this module is the one
place that turns it into `cryptography` key objects and back. Security property: loading checks
that the key is exactly the declared kind (RSA-4096, the declared curve, Ed25519, the declared
ML-DSA level), so material sealed under one algorithm name can never be used as another; errors
name key kinds only, never key bytes.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from kms_core.model import Algorithm

A = Algorithm

MlDsaPrivateKey = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | MlDsaPrivateKey

RSA_BITS: Final = 4096
# Every RSA algorithm's modulus size (RSA_2048/3072: Transit-only types).
RSA_SIZES: Final[dict[Algorithm, int]] = {A.RSA_4096: 4096, A.RSA_2048: 2048, A.RSA_3072: 3072}
_RSA_BY_SIZE: Final[dict[int, Algorithm]] = {bits: alg for alg, bits in RSA_SIZES.items()}
RSA_EXPONENT: Final = 65537

CURVES: Final[dict[Algorithm, type[ec.EllipticCurve]]] = {
    A.ECC_NIST_P256: ec.SECP256R1,
    A.ECC_NIST_P384: ec.SECP384R1,
    A.ECC_NIST_P521: ec.SECP521R1,
}
_CURVE_ALGORITHM: Final[dict[str, Algorithm]] = {curve().name: alg for alg, curve in CURVES.items()}

ML_DSA: Final[dict[Algorithm, type[MlDsaPrivateKey]]] = {
    A.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    A.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    A.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}

ASYMMETRIC: Final = (*RSA_SIZES, *CURVES, A.ECC_NIST_ED25519, *ML_DSA)


class KeyMismatch(ValueError):
    """Loaded material is a valid private key, but not of the declared algorithm."""

    def __init__(self, expected: Algorithm, actual: str) -> None:
        super().__init__(f"expected a {expected} key, got {actual}")
        self.expected = expected
        self.actual = actual


def generate_private_key(algorithm: Algorithm) -> PrivateKey:
    """A fresh private key of `algorithm` from the OS CSPRNG (via OpenSSL)."""
    if algorithm in RSA_SIZES:
        return rsa.generate_private_key(public_exponent=RSA_EXPONENT, key_size=RSA_SIZES[algorithm])
    if algorithm in CURVES:
        return ec.generate_private_key(CURVES[algorithm]())
    if algorithm is A.ECC_NIST_ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm in ML_DSA:
        return ML_DSA[algorithm].generate()
    raise ValueError(f"{algorithm} has no private key")


def describe(key: object) -> str:
    """The algorithm name of a loaded key (for mismatch messages); never its contents."""
    if isinstance(key, rsa.RSAPrivateKey):
        found_rsa = _RSA_BY_SIZE.get(key.key_size)
        return found_rsa.value if found_rsa else f"RSA_{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        found = _CURVE_ALGORITHM.get(key.curve.name)
        return found.value if found else f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return A.ECC_NIST_ED25519.value
    for algorithm, cls in ML_DSA.items():
        if isinstance(key, cls):
            return algorithm.value
    return type(key).__name__.removesuffix("PrivateKey").removeprefix("_") or "unknown"


def matches(algorithm: Algorithm, key: object) -> bool:
    """Whether `key` is exactly the kind `algorithm` declares (RSA size, EC curve, ML-DSA level)."""
    return describe(key) == algorithm.value


def load_private_key(algorithm: Algorithm, der: bytes, *, trusted: bool = False) -> PrivateKey:
    """Parse PKCS#8 DER into a key object, checking it is of `algorithm`.

    `trusted=True` is for material that came out of an authenticated seal (we generated or
    validated it on import), so the slow RSA consistency check can be skipped on the hot path.
    Raises ValueError (or KeyMismatch) when the bytes are not a matching unencrypted PKCS#8 key.
    """
    try:
        key = serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=trusted)
    except TypeError as exc:  # an encrypted PKCS#8 blob asks for a password
        raise ValueError("encrypted private keys are not accepted") from exc
    if not matches(algorithm, key):
        raise KeyMismatch(algorithm, describe(key))
    return key  # type: ignore[return-value]  # matches() narrowed it to one of PrivateKey's members


def pkcs8_der(key: PrivateKey) -> bytes:
    """Serialized material: unencrypted PKCS#8 DER (ML-DSA: the seed form)."""
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pkcs8_pem(key: PrivateKey) -> bytes:
    """The export format for RSA/EC/Ed25519: `-----BEGIN PRIVATE KEY-----` text."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def spki_der(key: PrivateKey) -> bytes:
    """The public half as DER SubjectPublicKeyInfo (the wire's `publicKey`)."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
