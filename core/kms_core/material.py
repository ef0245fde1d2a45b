"""Key material: generation, sealing, import and export.

"Serialized material" is raw key bytes for AES and HMAC, PKCS#8 DER for RSA, EC, Ed25519 and
ML-DSA. `mint` is the one function both modes (embedded API and Kubernetes operator) use to create
a key's material. Security property: material leaves this module only sealed (bound by AAD to
key id, version and algorithm) or through `export_private`, which callers gate on `isExportable`;
imports of weak material (all-zero symmetric keys, RSA public exponents below 65537) are refused;
error messages describe lengths and key kinds, never key bytes.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kms_core.algorithms import ExportFormat, MaterialCheck, spec_of
from kms_core.errors import BadRequest
from kms_core.model import Algorithm
from kms_core.primitives import keys
from kms_core.sealing.base import Sealer, material_aad

HMAC_IMPORT_MIN: Final = 16
HMAC_IMPORT_MAX: Final = 1024
# The unencrypted PEM forms Node's createPrivateKey({format: "pem"}) takes, which is what
# Infisical validates imports with: PKCS#8, PKCS#1 (`openssl genrsa -traditional`) and SEC1
# (`openssl ecparam -genkey`). Encrypted PEM is refused: we have no passphrase to open it with.
_PEM_HEADERS: Final = (
    b"-----BEGIN PRIVATE KEY-----",
    b"-----BEGIN RSA PRIVATE KEY-----",
    b"-----BEGIN EC PRIVATE KEY-----",
)
# FIPS 186-5 (criteria for IFC key pairs): 65537 <= e < 2**256, e odd. Infisical's import
# checks use the same bounds and wording.
RSA_MIN_EXPONENT: Final = 65537
RSA_MAX_EXPONENT: Final = 2**256
WEAK_RSA_EXPONENT: Final = "RSA key public exponent must be odd, at least 65,537, and less than 2^256."
ALL_ZERO_KEY: Final = "Invalid key material. An all-zero key is not allowed."



def generate(algorithm: Algorithm) -> bytes:
    """Fresh serialized material: AES 16/32 random bytes, HMAC = digest size, else PKCS#8 DER."""
    size = spec_of(algorithm).key_bytes
    if size:
        return os.urandom(size)
    return keys.pkcs8_der(keys.generate_private_key(algorithm))


def seal(key_id: str, version: int, algorithm: Algorithm, material: bytes, sealer: Sealer) -> bytes:
    """Seal material for its place (key id, version, algorithm)."""
    return sealer.seal(material, material_aad(key_id, version, algorithm))


def unseal(key_id: str, version: int, algorithm: Algorithm, sealed: bytes, sealer: Sealer) -> bytes:
    """Unseal material; raises `UnsealError` if the blob belongs to another key, version or KEK."""
    return sealer.unseal(sealed, material_aad(key_id, version, algorithm))


def mint(key_id: str, version: int, algorithm: Algorithm, sealer: Sealer) -> bytes:
    """Create and seal a new generation of material; returns only the sealed blob."""
    return seal(key_id, version, algorithm, generate(algorithm), sealer)


def _mismatch(algorithm: Algorithm, found: str) -> BadRequest:
    # Infisical's wording names the expected kind (the spec's `expected`), or for the
    # post-quantum keys the declared and the found algorithm.
    expected = spec_of(algorithm).expected or f"{algorithm.value} but the key is {found}"
    return BadRequest(f"Key material does not match the declared algorithm. Expected {expected}.")


def _parse_private(algorithm: Algorithm, data: bytes) -> bytes:
    pqc = spec_of(algorithm).material is MaterialCheck.PRIVATE_KEY_DER
    invalid = BadRequest(
        f"Invalid private key material. Expected a PKCS8 {'DER' if pqc else 'PEM'}-encoded private key."
    )
    try:
        if pqc:
            key: object = serialization.load_der_private_key(data, password=None)
        elif data.lstrip().startswith(_PEM_HEADERS):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            raise invalid
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise invalid from None
    if not keys.matches(algorithm, key):
        raise _mismatch(algorithm, keys.describe(key))
    if isinstance(key, rsa.RSAPrivateKey):
        _check_rsa_exponent(key.public_key().public_numbers().e)
    # Re-encode: stored material is always canonical PKCS#8 DER, whatever the input's wrapping.
    return keys.pkcs8_der(key)  # type: ignore[arg-type]  # matches() narrowed the key type


def _check_rsa_exponent(exponent: int) -> None:
    # A small exponent (3) makes unpadded or badly padded messages recoverable (cube roots,
    # Coppersmith/Hastad) and is what a hand-made or legacy key tends to carry.
    if not (RSA_MIN_EXPONENT <= exponent < RSA_MAX_EXPONENT and exponent % 2 == 1):
        raise BadRequest(WEAK_RSA_EXPONENT)


def _check_not_all_zero(data: bytes) -> None:
    # An all-zero key is a placeholder or a failed read, never random material; a key nobody
    # would guess wrong must not be accepted as a secret.
    if not any(data):
        raise BadRequest(ALL_ZERO_KEY)


def parse_import(algorithm: Algorithm, data: bytes) -> bytes:
    """Bulk-import material -> serialized material, or BadRequest with the spec §2.15 texts.

    Beyond Infisical's checks, weak material is refused: all-zero AES and HMAC keys and RSA
    keys whose public exponent is below 65537.
    """
    spec = spec_of(algorithm)
    if spec.material is MaterialCheck.EXACT_LENGTH:
        expected = spec.key_bytes
        if len(data) != expected:
            raise BadRequest(
                f"Invalid key material length for {algorithm.value}. "
                f"Expected {expected} bytes, got {len(data)}."
            )
        _check_not_all_zero(data)
        return bytes(data)
    if spec.material is MaterialCheck.HMAC_LENGTH:
        if not HMAC_IMPORT_MIN <= len(data) <= HMAC_IMPORT_MAX:
            # Infisical's wording names HMAC, not the algorithm (unlike the AES length message).
            raise BadRequest(
                f"Invalid HMAC key material length. Expected between {HMAC_IMPORT_MIN} "
                f"and {HMAC_IMPORT_MAX} bytes, got {len(data)}."
            )
        _check_not_all_zero(data)
        return bytes(data)
    return _parse_private(algorithm, data)


def export_private(algorithm: Algorithm, material: bytes) -> bytes:
    """Spec §2.13: raw bytes (AES/HMAC), PKCS#8 PEM text (RSA/EC/Ed25519), PKCS#8 DER (ML-DSA)."""
    if spec_of(algorithm).export is not ExportFormat.PKCS8_PEM:  # raw bytes, or the stored DER
        return bytes(material)
    return keys.pkcs8_pem(keys.load_private_key(algorithm, material, trusted=True))
