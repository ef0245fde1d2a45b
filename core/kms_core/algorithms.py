"""The algorithm registry: one `AlgorithmSpec` per algorithm, and every table derived from it.

Each spec carries an algorithm's usages, primitive kind, import material check, export format,
sizes, hashes, signing algorithms and wire names per dialect (Infisical's now; Transit's next).
The model's sets (symmetric, HMAC, per-usage), the keyring's construction, the import checks, the
API's schemas and the CRD's algorithm enum and usage rule all come from here (the CRD is checked
against it by tests/unit/test_crd.py). Adding an algorithm: one `Algorithm` member (its value is
stored and bound into sealed blobs' AAD) and one spec; a new primitive kind also needs its
primitive in kms_core.primitives.

Everything here is data from the wire contract (spec §1.3, §2.10); no I/O, no key material.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from kms_core.model import Algorithm, KeyUsage, SigningAlgorithm

__all__ = [
    "ALGORITHMS",
    "AlgorithmSpec",
    "Dialect",
    "ExportFormat",
    "MaterialCheck",
    "Primitive",
    "by_wire_name",
    "spec_of",
    "wire_name",
]

A = Algorithm
S = SigningAlgorithm
U = KeyUsage


class Dialect(StrEnum):
    """The HTTP dialects that name algorithms on the wire (ARCHITECTURE.md §8)."""

    INFISICAL = "infisical"
    TRANSIT = "transit"


class Primitive(StrEnum):
    """The kind of primitive a key's material is loaded into (kms_core.keyring)."""

    AES_GCM = "aes-gcm"
    CHACHA20 = "chacha20-poly1305"
    HMAC = "hmac"
    RSA = "rsa"
    EC = "ec"
    ED25519 = "ed25519"
    ML_DSA = "ml-dsa"


class MaterialCheck(StrEnum):
    """How imported material is validated (kms_core.material.parse_import)."""

    EXACT_LENGTH = "exact-length"  # raw key bytes of exactly `key_bytes`, not all zero
    HMAC_LENGTH = "hmac-length"  # raw key bytes within the HMAC import bounds, not all zero
    PRIVATE_KEY_PEM = "private-key-pem"  # PKCS#8 / PKCS#1 / SEC1 PEM of exactly this algorithm
    PRIVATE_KEY_DER = "private-key-der"  # PKCS#8 DER of exactly this algorithm


class ExportFormat(StrEnum):
    """What `/private-key` returns (spec §2.13)."""

    RAW = "raw"  # the key bytes
    PKCS8_PEM = "pkcs8-pem"  # `-----BEGIN PRIVATE KEY-----` text
    PKCS8_DER = "pkcs8-der"  # the stored DER (ML-DSA: the seed form)


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """Everything KubeKMS knows about one algorithm, in one place.

    `algorithm` is the stored identity (its value is bound into every sealed blob's AAD, so it
    never changes); `wire` names it per dialect (a dialect absent from it does not offer the
    algorithm); `usages` are the key usages it may serve, in Infisical's listing order.
    """

    algorithm: Algorithm
    usages: tuple[KeyUsage, ...]
    primitive: Primitive
    material: MaterialCheck
    export: ExportFormat
    wire: Mapping[Dialect, str]
    key_bytes: int = 0  # raw material size (AES key; HMAC key = digest size); 0: a private key
    hash: str = ""  # the HMAC's hash, as hashlib names it
    signing: tuple[SigningAlgorithm, ...] = ()  # ordered as the signing-algorithms route lists them
    expected: str = ""  # Infisical's wording in import "does not match" errors (spec §2.15)
    slow: bool = False  # private-key operations take over ~1 ms: run them in the executor
    rotatable: bool = field(init=False)

    def __post_init__(self) -> None:
        # Infisical's rotate route rotates AES keys only (its clients of other usages would have
        # to learn a new public or MAC key); the core, the scheduler and Transit rotate every
        # usage (kms_core.lifecycle).
        object.__setattr__(self, "rotatable", self.primitive in AEADS)

    @property
    def is_asymmetric(self) -> bool:
        """Keys with a public half (RSA, EC, Ed25519, ML-DSA)."""
        return self.primitive not in (*AEADS, Primitive.HMAC)

    @property
    def dual_use(self) -> bool:
        """RSA keys serve encryption (OAEP) and signing: OpenBao's rsa-* keys do both, so the
        Transit dialect lets a key of either usage do both (kms_core.service `dual_use`)."""
        return self.primitive is Primitive.RSA


# The symmetric AEAD kinds: random 96-bit nonces, `nonce || CT || TAG`, optional AAD.
AEADS: Final = (Primitive.AES_GCM, Primitive.CHACHA20)


def _wire(infisical: str | None, transit: str | None = None) -> Mapping[Dialect, str]:
    names = {Dialect.INFISICAL: infisical} if infisical is not None else {}
    if transit is not None:
        # Vault/OpenBao Transit key types; confirmed by the differential tests against OpenBao
        # when the Transit dialect lands (ARCHITECTURE.md §8).
        names[Dialect.TRANSIT] = transit
    return MappingProxyType(names)


_RSA_SIGNING: Final = (
    S.RSASSA_PSS_SHA_512,
    S.RSASSA_PSS_SHA_384,
    S.RSASSA_PSS_SHA_256,
    S.RSASSA_PKCS1_V1_5_SHA_512,
    S.RSASSA_PKCS1_V1_5_SHA_384,
    S.RSASSA_PKCS1_V1_5_SHA_256,
)
_ECDSA: Final = (S.ECDSA_SHA_512, S.ECDSA_SHA_384, S.ECDSA_SHA_256)
_PEM, _DER, _PKCS8 = MaterialCheck.PRIVATE_KEY_PEM, MaterialCheck.PRIVATE_KEY_DER, ExportFormat.PKCS8_PEM


def _aes(algorithm: Algorithm, size: int, transit: str) -> AlgorithmSpec:
    return AlgorithmSpec(
        algorithm, (U.ENCRYPT_DECRYPT,), Primitive.AES_GCM, MaterialCheck.EXACT_LENGTH, ExportFormat.RAW,
        _wire(algorithm.value, transit), key_bytes=size,
    )


def _rsa(algorithm: Algorithm, bits: int) -> AlgorithmSpec:
    return AlgorithmSpec(
        algorithm, (U.ENCRYPT_DECRYPT, U.SIGN_VERIFY), Primitive.RSA, _PEM, _PKCS8,
        _wire(None, f"rsa-{bits}"), signing=_RSA_SIGNING, expected=f"an RSA {bits}-bit key", slow=True,
    )


def _ec(algorithm: Algorithm, curve: str, transit: str) -> AlgorithmSpec:
    return AlgorithmSpec(
        algorithm, (U.SIGN_VERIFY, U.KEY_AGREEMENT), Primitive.EC, _PEM, _PKCS8,
        _wire(algorithm.value, transit), signing=_ECDSA, expected=f"an EC {curve} key",
    )


def _ml_dsa(algorithm: Algorithm, signing: SigningAlgorithm) -> AlgorithmSpec:
    return AlgorithmSpec(
        algorithm, (U.SIGN_VERIFY,), Primitive.ML_DSA, _DER, ExportFormat.PKCS8_DER,
        _wire(algorithm.value), signing=(signing,), slow=True,
    )


def _hmac(algorithm: Algorithm, hash_name: str, size: int) -> AlgorithmSpec:
    return AlgorithmSpec(
        algorithm, (U.GENERATE_VERIFY_MAC,), Primitive.HMAC, MaterialCheck.HMAC_LENGTH, ExportFormat.RAW,
        _wire(algorithm.value), key_bytes=size, hash=hash_name,
    )


# The registry: one spec per algorithm, in the order the wire contract lists them (spec §1.3).
ALGORITHMS: Final[tuple[AlgorithmSpec, ...]] = (
    _aes(A.AES_256_GCM, 32, "aes256-gcm96"),
    _aes(A.AES_128_GCM, 16, "aes128-gcm96"),
    # RSA_4096 may also encrypt (RSAES-OAEP-SHA-256), Infisical's V3' line.
    AlgorithmSpec(
        A.RSA_4096, (U.ENCRYPT_DECRYPT, U.SIGN_VERIFY), Primitive.RSA, _PEM, _PKCS8,
        _wire(A.RSA_4096.value, "rsa-4096"), signing=_RSA_SIGNING, expected="an RSA 4096-bit key", slow=True,
    ),
    _ec(A.ECC_NIST_P256, "P-256", "ecdsa-p256"),
    _ec(A.ECC_NIST_P384, "P-384", "ecdsa-p384"),
    _ec(A.ECC_NIST_P521, "P-521", "ecdsa-p521"),
    AlgorithmSpec(
        A.ECC_NIST_ED25519, (U.SIGN_VERIFY,), Primitive.ED25519, _PEM, _PKCS8,
        _wire(A.ECC_NIST_ED25519.value, "ed25519"), signing=(S.ED25519_SHA_512, S.ED25519_PH_SHA_512),
        expected="an Ed25519 key",
    ),
    _ml_dsa(A.ML_DSA_44, S.ML_DSA_44),
    _ml_dsa(A.ML_DSA_65, S.ML_DSA_65),
    _ml_dsa(A.ML_DSA_87, S.ML_DSA_87),
    _hmac(A.HMAC_SHA_1, "sha1", 20),
    _hmac(A.HMAC_SHA_224, "sha224", 28),
    _hmac(A.HMAC_SHA_256, "sha256", 32),
    _hmac(A.HMAC_SHA_384, "sha384", 48),
    _hmac(A.HMAC_SHA_512, "sha512", 64),
    # Transit-only types (ARCHITECTURE.md §8): no Infisical wire name, so the Infisical dialect
    # cannot create or import them; it shows and uses them by id under their stored value.
    AlgorithmSpec(
        A.CHACHA20_POLY1305, (U.ENCRYPT_DECRYPT,), Primitive.CHACHA20, MaterialCheck.EXACT_LENGTH,
        ExportFormat.RAW, _wire(None, "chacha20-poly1305"), key_bytes=32,
    ),
    _rsa(A.RSA_2048, 2048),
    _rsa(A.RSA_3072, 3072),
)

_BY_ALGORITHM: Final[Mapping[Algorithm, AlgorithmSpec]] = MappingProxyType(
    {s.algorithm: s for s in ALGORITHMS}
)
# Fail at import, not on the first request: every Algorithm member has exactly one spec.
if len(_BY_ALGORITHM) != len(ALGORITHMS) or set(_BY_ALGORITHM) != set(Algorithm):
    raise RuntimeError("kms_core.algorithms: the registry and the Algorithm enum disagree")
_BY_WIRE: Final[Mapping[tuple[Dialect, str], Algorithm]] = MappingProxyType(
    {(dialect, name): s.algorithm for s in ALGORITHMS for dialect, name in s.wire.items()}
)


def spec_of(algorithm: Algorithm) -> AlgorithmSpec:
    """The registry entry of `algorithm`."""
    return _BY_ALGORITHM[algorithm]


def wire_name(algorithm: Algorithm, dialect: Dialect) -> str | None:
    """`algorithm`'s name in `dialect`, or None when that dialect does not offer it."""
    return _BY_ALGORITHM[algorithm].wire.get(dialect)


def by_wire_name(dialect: Dialect, name: str) -> Algorithm | None:
    """The algorithm `dialect` calls `name`, or None."""
    return _BY_WIRE.get((dialect, name))


# -- tables derived from the registry (the names the rest of kms_core and the API use) ----------


def _of_primitive(primitive: Primitive) -> tuple[Algorithm, ...]:
    return tuple(s.algorithm for s in ALGORITHMS if s.primitive is primitive)


def _for_usage(usage: KeyUsage) -> tuple[Algorithm, ...]:
    return tuple(s.algorithm for s in ALGORITHMS if usage in s.usages)


SYMMETRIC: Final = _of_primitive(Primitive.AES_GCM)
HMAC: Final = _of_primitive(Primitive.HMAC)
ENCRYPTION: Final = _for_usage(U.ENCRYPT_DECRYPT)
ASYMMETRIC_SIGNING: Final = _for_usage(U.SIGN_VERIFY)
KEY_AGREEMENT: Final = _for_usage(U.KEY_AGREEMENT)
ALLOWED: Final[dict[KeyUsage, tuple[Algorithm, ...]]] = {usage: _for_usage(usage) for usage in KeyUsage}
SIGNING_ALGORITHMS: Final[dict[Algorithm, tuple[SigningAlgorithm, ...]]] = {
    s.algorithm: s.signing for s in ALGORITHMS if s.signing
}
HMAC_HASH: Final[dict[Algorithm, str]] = {s.algorithm: s.hash for s in ALGORITHMS if s.hash}
# Raw material sizes: AES key bytes and HMAC key bytes (= digest size, spec §2.1).
SYMMETRIC_KEY_BYTES: Final[dict[Algorithm, int]] = {
    s.algorithm: s.key_bytes for s in ALGORITHMS if s.key_bytes
}

# The 422 message for an incompatible usage/algorithm pair (spec §1.3, V2+ wording). Infisical's
# encrypt-decrypt message lists the symmetric algorithms only (RSA_4096 encryption came later).
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
    # Infisical's text: the Transit-only types are not options there.
    named = [a for a in options if Dialect.INFISICAL in _BY_ALGORITHM[a].wire]
    return f"{field} must be a valid {kind} algorithm. Valid options are: {', '.join(named)}"


def is_symmetric(algorithm: Algorithm) -> bool:
    """AES-GCM and ChaCha20-Poly1305 keys."""
    return _BY_ALGORITHM[algorithm].primitive in AEADS


def is_hmac(algorithm: Algorithm) -> bool:
    return _BY_ALGORITHM[algorithm].primitive is Primitive.HMAC


def is_asymmetric(algorithm: Algorithm) -> bool:
    """Keys with a public half (RSA, EC, Ed25519, ML-DSA)."""
    return _BY_ALGORITHM[algorithm].is_asymmetric


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

# Payload limits (spec §1.1, V2+), in decoded bytes.
PLAINTEXT_LIMIT: Final = 1_048_576
CIPHERTEXT_LIMIT: Final = 1_048_576 + 1024
DATA_LIMIT: Final = 1_048_576
SIGNATURE_LIMIT: Final = 8192
MAC_LIMIT: Final = 1024
PUBLIC_KEY_LIMIT: Final = 1024
RSA_OAEP_PLAINTEXT_LIMIT: Final = 446  # RSA-4096: 512 - 2 * 32 - 2
