"""Transit key types <-> KubeKMS algorithms and usages, hash names, and a key's Transit `data`.

| Transit type   | KubeKMS algorithm | usage when created through Transit |
| aes256-gcm96   | aes-256-gcm       | encrypt-decrypt (the default type) |
| aes128-gcm96   | aes-128-gcm       | encrypt-decrypt                    |
| ecdsa-p256/384/521 | ECC_NIST_P256/384/521 | sign-verify                |
| ed25519        | ECC_NIST_ED25519  | sign-verify                        |
| chacha20-poly1305 | chacha20-poly1305 (Transit-only) | encrypt-decrypt            |
| rsa-2048/3072/4096 | RSA_2048/3072 (Transit-only), RSA_4096 | sign-verify (a KubeKMS key has one
|                |                   | usage; Transit lets an RSA key of either usage both
|                |                   | encrypt and sign, as OpenBao's rsa-* keys do: `dual_use`) |
| hmac           | HMAC_SHA_256 (key_size 32); the other HMAC_SHA_* keys read as `hmac` with their size |

Types OpenBao has and KubeKMS does not (aes128-cmac, managed_key, ...) are refused with
OpenBao's own text for a type it does not know.

Security property: a key's `data` is an allow-list of record fields and public keys; no
material or token reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pybase64

from kms_core.algorithms import AEADS, Dialect, Primitive, spec_of, wire_name
from kms_core.model import Algorithm, Key, KeyUsage

__all__ = [
    "CREATABLE",
    "DEFAULT_TYPE",
    "HASHES",
    "HMAC_HASHES",
    "VersionView",
    "key_data",
    "type_of",
]

DEFAULT_TYPE: Final = "aes256-gcm96"
A, U = Algorithm, KeyUsage
# What `POST transit/keys/:name {"type": ...}` creates.
CREATABLE: Final[dict[str, tuple[Algorithm, KeyUsage]]] = {
    "aes256-gcm96": (A.AES_256_GCM, U.ENCRYPT_DECRYPT),
    "aes128-gcm96": (A.AES_128_GCM, U.ENCRYPT_DECRYPT),
    "ecdsa-p256": (A.ECC_NIST_P256, U.SIGN_VERIFY),
    "ecdsa-p384": (A.ECC_NIST_P384, U.SIGN_VERIFY),
    "ecdsa-p521": (A.ECC_NIST_P521, U.SIGN_VERIFY),
    "ed25519": (A.ECC_NIST_ED25519, U.SIGN_VERIFY),
    "rsa-4096": (A.RSA_4096, U.SIGN_VERIFY),
    "chacha20-poly1305": (A.CHACHA20_POLY1305, U.ENCRYPT_DECRYPT),
    "rsa-2048": (A.RSA_2048, U.SIGN_VERIFY),
    "rsa-3072": (A.RSA_3072, U.SIGN_VERIFY),
    "hmac": (A.HMAC_SHA_256, U.GENERATE_VERIFY_MAC),
}
HMAC_KEY_SIZE: Final = 32

# Vault's hash names (`hash_algorithm`, `algorithm`) -> hashlib's.
HASHES: Final[dict[str, str]] = {
    "sha2-224": "sha224",
    "sha2-256": "sha256",
    "sha2-384": "sha384",
    "sha2-512": "sha512",
    "sha3-224": "sha3_224",
    "sha3-256": "sha3_256",
    "sha3-384": "sha3_384",
    "sha3-512": "sha3_512",
}
# An HMAC key's hash (kms_core.algorithms: the key's hash is fixed) -> Vault's name for it.
HMAC_HASHES: Final[dict[str, str]] = {"sha1": "sha1", **{v: k for k, v in HASHES.items()}}

_CURVE_NAMES: Final = {
    A.ECC_NIST_P256: "P-256",
    A.ECC_NIST_P384: "P-384",
    A.ECC_NIST_P521: "P-521",
    A.ECC_NIST_ED25519: "ed25519",
    A.RSA_4096: "rsa-4096",
    A.RSA_2048: "rsa-2048",
    A.RSA_3072: "rsa-3072",
}


def type_of(key: Key) -> str:
    """The Transit type a key reads as (`hmac` for every HMAC key; else the registry's name,
    or the Infisical algorithm for one Transit has no name for, e.g. ML-DSA)."""
    if spec_of(key.algorithm).primitive is Primitive.HMAC:
        return "hmac"
    return wire_name(key.algorithm, Dialect.TRANSIT) or key.algorithm.value


def _rfc3339(moment: datetime) -> str:
    """Go's RFC 3339 with nanoseconds (`2026-01-02T03:04:05.123456Z`, trailing zeros cut)."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def public_key_text(key: Key, spki_der: bytes) -> str:
    """Transit's `public_key`: PEM SPKI, or for ed25519 base64 of the raw 32-byte key."""
    if key.algorithm is A.ECC_NIST_ED25519:
        return pybase64.b64encode_as_string(spki_der[-32:])
    body = pybase64.b64encode_as_string(spki_der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


@dataclass(frozen=True, slots=True)
class VersionView:
    """What a key read shows of one version: its creation time and, for asymmetric keys, its
    DER SubjectPublicKeyInfo (never private material)."""

    created_at: datetime
    public_key: bytes | None = None


def key_data(key: Key, versions: Mapping[int, VersionView]) -> dict[str, Any]:
    """A key's `data` object as OpenBao's `GET transit/keys/:name` shapes it.

    `versions` are the versions still allowed to decrypt (OpenBao lists no others), each with
    its own creation time; `deletion_allowed` is the inverse of Infisical's delete protection,
    `soft_deleted` is Infisical's `isDisabled` (kept, listed, refused for every use);
    `supports_encryption`, `supports_decryption` and `supports_signing` follow the key's usage,
    and both for RSA keys (dual use through Transit, as OpenBao's rsa-* keys)."""
    spec = spec_of(key.algorithm)
    usage = key.key_usage
    encrypts = usage is U.ENCRYPT_DECRYPT or spec.dual_use
    signs = usage is U.SIGN_VERIFY or spec.dual_use
    data: dict[str, Any] = {
        "allow_plaintext_backup": key.allow_plaintext_backup,
        "auto_rotate_period": key.rotation_period,
        "deletion_allowed": not key.has_delete_protection,
        "derived": False,
        "exportable": key.is_exportable,
        "imported_key": key.imported,
        "latest_version": key.version,
        "min_available_version": key.min_available_version,
        "min_decryption_version": key.min_decryption_version,
        "min_encryption_version": key.min_encryption_version,
        "name": key.name,
        "soft_deleted": key.is_disabled,
        "supports_decryption": encrypts,
        "supports_derivation": spec.primitive in (*AEADS, Primitive.ED25519),
        "supports_encryption": encrypts,
        "supports_signing": signs,
        "type": type_of(key),
    }
    if key.imported:  # OpenBao lists it for imported keys only (a rotation clears `imported`)
        data["imported_key_allow_rotation"] = key.allow_rotation
    if key.derived:  # OpenBao lists these for derived keys only
        data["kdf"] = "hkdf_sha256"
        data["convergent_encryption"] = key.convergent_encryption
        if key.convergent_encryption:
            data["convergent_encryption_version"] = -1  # -1: the version is kept per key version (3)
    data["derived"] = key.derived
    if spec.primitive is Primitive.HMAC:
        data["key_size"] = spec.key_bytes
    elif spec.is_asymmetric:
        data["keys"] = {
            str(v): {
                "certificate_chain": "",
                "creation_time": _rfc3339(view.created_at),
                "name": _CURVE_NAMES.get(key.algorithm, key.algorithm.value),
                "public_key": public_key_text(key, view.public_key) if view.public_key is not None else "",
            }
            for v, view in sorted(versions.items())
        }
    else:
        data["keys"] = {str(v): int(view.created_at.timestamp()) for v, view in sorted(versions.items())}
    return data
