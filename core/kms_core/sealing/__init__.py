"""Sealing of key material at rest: a root key (AES-256-GCM) or an HSM key through PKCS#11."""

from kms_core.sealing.base import Sealer, UnsealError, material_aad
from kms_core.sealing.blob import blob_kek_id
from kms_core.sealing.factory import describe, from_env
from kms_core.sealing.pkcs11 import Pkcs11Sealer
from kms_core.sealing.rootkey import RootKeySealer

__all__ = [
    "Pkcs11Sealer",
    "RootKeySealer",
    "Sealer",
    "UnsealError",
    "blob_kek_id",
    "describe",
    "from_env",
    "material_aad",
]
