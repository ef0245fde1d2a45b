"""Algorithm facts: usage compatibility, signing-algorithm lists, hashes and sizes.

Everything here is data from the wire contract (spec §1.3, §2.10); no I/O, no key material.
"""

from __future__ import annotations

from typing import Final

from kms_core.model import Algorithm, KeyUsage, SigningAlgorithm

A = Algorithm
S = SigningAlgorithm

SYMMETRIC: Final = (A.AES_256_GCM, A.AES_128_GCM)
ASYMMETRIC_SIGNING: Final = (
    A.RSA_4096,
    A.ECC_NIST_P256,
    A.ECC_NIST_P384,
    A.ECC_NIST_P521,
    A.ECC_NIST_ED25519,
    A.ML_DSA_44,
    A.ML_DSA_65,
    A.ML_DSA_87,
)
HMAC: Final = (A.HMAC_SHA_1, A.HMAC_SHA_224, A.HMAC_SHA_256, A.HMAC_SHA_384, A.HMAC_SHA_512)
KEY_AGREEMENT: Final = (A.ECC_NIST_P256, A.ECC_NIST_P384, A.ECC_NIST_P521)
# RSA_4096 may also encrypt (RSAES-OAEP-SHA-256), Infisical's V3' line.
ENCRYPTION: Final = (*SYMMETRIC, A.RSA_4096)

ALLOWED: Final[dict[KeyUsage, tuple[Algorithm, ...]]] = {
    KeyUsage.ENCRYPT_DECRYPT: ENCRYPTION,
    KeyUsage.SIGN_VERIFY: ASYMMETRIC_SIGNING,
    KeyUsage.GENERATE_VERIFY_MAC: HMAC,
    KeyUsage.KEY_AGREEMENT: KEY_AGREEMENT,
}

# The 422 message for an incompatible usage/algorithm pair (spec §1.3, V2+ wording).
_KIND: Final[dict[KeyUsage, tuple[str, tuple[Algorithm, ...]]]] = {
    KeyUsage.ENCRYPT_DECRYPT: ("symmetric encryption", SYMMETRIC),
    KeyUsage.SIGN_VERIFY: ("asymmetric sign-verify", ASYMMETRIC_SIGNING),
    KeyUsage.GENERATE_VERIFY_MAC: ("HMAC", HMAC),
    KeyUsage.KEY_AGREEMENT: ("key agreement", KEY_AGREEMENT),
}


def is_compatible(usage: KeyUsage, algorithm: Algorithm) -> bool:
    """Whether a key of `usage` may use `algorithm`."""
    return algorithm in ALLOWED[usage]


def incompatibility_message(usage: KeyUsage, field: str = "algorithm") -> str:
    """The spec's message for a usage/algorithm mismatch, naming `field` (V1 says encryptionAlgorithm)."""
    kind, options = _KIND[usage]
    return f"{field} must be a valid {kind} algorithm. Valid options are: {', '.join(options)}"


def is_symmetric(algorithm: Algorithm) -> bool:
    return algorithm in SYMMETRIC


def is_hmac(algorithm: Algorithm) -> bool:
    return algorithm in HMAC


def is_asymmetric(algorithm: Algorithm) -> bool:
    """Keys with a public half (RSA, EC, Ed25519, ML-DSA)."""
    return not is_symmetric(algorithm) and not is_hmac(algorithm)


SIGNING_ALGORITHMS: Final[dict[Algorithm, tuple[SigningAlgorithm, ...]]] = {
    A.RSA_4096: (
        S.RSASSA_PSS_SHA_512,
        S.RSASSA_PSS_SHA_384,
        S.RSASSA_PSS_SHA_256,
        S.RSASSA_PKCS1_V1_5_SHA_512,
        S.RSASSA_PKCS1_V1_5_SHA_384,
        S.RSASSA_PKCS1_V1_5_SHA_256,
    ),
    A.ECC_NIST_P256: (S.ECDSA_SHA_512, S.ECDSA_SHA_384, S.ECDSA_SHA_256),
    A.ECC_NIST_P384: (S.ECDSA_SHA_512, S.ECDSA_SHA_384, S.ECDSA_SHA_256),
    A.ECC_NIST_P521: (S.ECDSA_SHA_512, S.ECDSA_SHA_384, S.ECDSA_SHA_256),
    A.ECC_NIST_ED25519: (S.ED25519_SHA_512, S.ED25519_PH_SHA_512),
    A.ML_DSA_44: (S.ML_DSA_44,),
    A.ML_DSA_65: (S.ML_DSA_65,),
    A.ML_DSA_87: (S.ML_DSA_87,),
}


def signing_algorithms(algorithm: Algorithm) -> tuple[SigningAlgorithm, ...]:
    """The ordered list the signing-algorithms endpoint returns for a sign-verify key."""
    return SIGNING_ALGORITHMS.get(algorithm, ())


# Hash name (as `hashlib` and the error messages need it) for each signing and MAC algorithm.
SIGNING_HASH: Final[dict[SigningAlgorithm, str]] = {
    S.RSASSA_PSS_SHA_512: "sha512",
    S.RSASSA_PSS_SHA_384: "sha384",
    S.RSASSA_PSS_SHA_256: "sha256",
    S.RSASSA_PKCS1_V1_5_SHA_512: "sha512",
    S.RSASSA_PKCS1_V1_5_SHA_384: "sha384",
    S.RSASSA_PKCS1_V1_5_SHA_256: "sha256",
    S.ECDSA_SHA_512: "sha512",
    S.ECDSA_SHA_384: "sha384",
    S.ECDSA_SHA_256: "sha256",
    S.ED25519_SHA_512: "sha512",
    S.ED25519_PH_SHA_512: "sha512",
}

HMAC_HASH: Final[dict[Algorithm, str]] = {
    A.HMAC_SHA_1: "sha1",
    A.HMAC_SHA_224: "sha224",
    A.HMAC_SHA_256: "sha256",
    A.HMAC_SHA_384: "sha384",
    A.HMAC_SHA_512: "sha512",
}

# Raw material sizes: AES key bytes and HMAC key bytes (= digest size, spec §2.1).
SYMMETRIC_KEY_BYTES: Final[dict[Algorithm, int]] = {
    A.AES_256_GCM: 32,
    A.AES_128_GCM: 16,
    A.HMAC_SHA_1: 20,
    A.HMAC_SHA_224: 28,
    A.HMAC_SHA_256: 32,
    A.HMAC_SHA_384: 48,
    A.HMAC_SHA_512: 64,
}

# Payload limits (spec §1.1, V2+), in decoded bytes.
PLAINTEXT_LIMIT: Final = 1_048_576
CIPHERTEXT_LIMIT: Final = 1_048_576 + 1024
DATA_LIMIT: Final = 1_048_576
SIGNATURE_LIMIT: Final = 8192
MAC_LIMIT: Final = 1024
PUBLIC_KEY_LIMIT: Final = 1024
RSA_OAEP_PLAINTEXT_LIMIT: Final = 446
