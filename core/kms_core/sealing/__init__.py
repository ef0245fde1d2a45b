"""Sealing of key material at rest: a root key (AES-256-GCM) or an HSM key through PKCS#11."""

from kms_core.sealing.base import Sealer, material_aad

__all__ = ["Sealer", "material_aad"]
