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
