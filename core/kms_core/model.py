"""The key model: usages, algorithms and the records stores keep.

Wire strings are the enum values, exactly as Infisical's API spells them. Security property:
records hold sealed material only; unsealed material never appears in these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class KeyUsage(StrEnum):
    ENCRYPT_DECRYPT = "encrypt-decrypt"
    SIGN_VERIFY = "sign-verify"
    GENERATE_VERIFY_MAC = "generate-verify-mac"
    KEY_AGREEMENT = "key-agreement"


class Algorithm(StrEnum):
    AES_256_GCM = "aes-256-gcm"
    AES_128_GCM = "aes-128-gcm"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_NIST_ED25519 = "ECC_NIST_ED25519"
    ML_DSA_44 = "ML_DSA_44"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"
    HMAC_SHA_1 = "HMAC_SHA_1"
    HMAC_SHA_224 = "HMAC_SHA_224"
    HMAC_SHA_256 = "HMAC_SHA_256"
    HMAC_SHA_384 = "HMAC_SHA_384"
    HMAC_SHA_512 = "HMAC_SHA_512"
    # Transit-only types (no Infisical counterpart): appended, since a value is stored and bound
    # into sealed blobs' AAD and must never change.
    CHACHA20_POLY1305 = "chacha20-poly1305"
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"


class SigningAlgorithm(StrEnum):
    RSASSA_PSS_SHA_512 = "RSASSA_PSS_SHA_512"
    RSASSA_PSS_SHA_384 = "RSASSA_PSS_SHA_384"
    RSASSA_PSS_SHA_256 = "RSASSA_PSS_SHA_256"
    RSASSA_PKCS1_V1_5_SHA_512 = "RSASSA_PKCS1_V1_5_SHA_512"
    RSASSA_PKCS1_V1_5_SHA_384 = "RSASSA_PKCS1_V1_5_SHA_384"
    RSASSA_PKCS1_V1_5_SHA_256 = "RSASSA_PKCS1_V1_5_SHA_256"
    ECDSA_SHA_512 = "ECDSA_SHA_512"
    ECDSA_SHA_384 = "ECDSA_SHA_384"
    ECDSA_SHA_256 = "ECDSA_SHA_256"
    ML_DSA_44 = "ML_DSA_44"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"
    ED25519_SHA_512 = "ED25519_SHA_512"
    ED25519_PH_SHA_512 = "ED25519_PH_SHA_512"


@dataclass(frozen=True, slots=True)
class Key:
    """A key's record (Infisical's CmekSchema without wire formatting)."""

    id: str
    name: str
    description: str | None
    is_disabled: bool
    org_id: str
    project_id: str
    key_usage: KeyUsage
    algorithm: Algorithm
    version: int
    is_exportable: bool
    has_delete_protection: bool
    created_at: datetime
    updated_at: datetime
    # Lifecycle policy (kms_core.lifecycle). Defaults are Vault Transit's, so records made before
    # the policy existed keep behaving as they did: every version decrypts, nothing rotates.
    rotation_period: int = 0  # seconds between scheduled rotations; 0 = never
    min_decryption_version: int = 1  # older versions are refused for decrypt/verify
    min_encryption_version: int = 0  # 0 = the latest version encrypts/signs
    min_available_version: int = 0  # versions below it were trimmed (material destroyed); 0 = none
    rotated_at: datetime | None = None  # when the current version was made (None: unknown)
    # Transit's key derivation (kms_core.derivation): `derived` keys encrypt under
    # HKDF-SHA256(material, info=context); `convergent_encryption` derives the nonce from the
    # plaintext too. Both fixed at creation.
    derived: bool = False
    convergent_encryption: bool = False
    # Transit's backup and import flags (SQLite migration 4). `allow_plaintext_backup` only turns
    # on (the material may have left already); `imported` is true while the latest version is
    # material a client brought (BYOK import, import_version, a restored imported key) and a
    # rotation that mints new material clears it, as OpenBao's `imported_key`; `allow_rotation`
    # lets an imported key rotate (OpenBao's `imported_key_allow_rotation`).
    allow_plaintext_backup: bool = False
    imported: bool = False
    allow_rotation: bool = False

    @property
    def deletion_allowed(self) -> bool:
        """Vault's `deletion_allowed` is the inverse of Infisical's `hasDeleteProtection`: one flag."""
        return not self.has_delete_protection

    @property
    def generation(self) -> tuple[int, int, int, int]:
        """What decides a keyring's contents: the current version and the version bounds."""
        return (self.version, self.min_decryption_version, self.min_encryption_version,
                self.min_available_version)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeletedKey:
    """A key deleted within the recovery window: invisible to every API but restorable until
    `purge_at`, when its material is destroyed."""

    key: Key
    deleted_at: datetime
    purge_at: datetime


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One generation of a key's material, sealed (bound by AAD to key id, version, algorithm)."""

    key_id: str
    version: int
    sealed: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a caller asks for when creating (or importing) a key."""

    project_id: str
    name: str
    key_usage: KeyUsage = KeyUsage.ENCRYPT_DECRYPT
    algorithm: Algorithm = Algorithm.AES_256_GCM
    description: str | None = None
    is_exportable: bool = False
    has_delete_protection: bool = False
    derived: bool = False  # Transit's `derived` (AEAD keys only)
    convergent_encryption: bool = False  # Transit's `convergent_encryption` (needs `derived`)
    allow_plaintext_backup: bool = False  # Transit's backup/ may hand out the material
    imported: bool = False  # version 1 is a client's material (Transit import, restore)
    allow_rotation: bool = False  # an imported key may rotate to generated material
