"""Pure cryptographic primitives (no I/O): AEAD, RSA-OAEP, signatures, MAC, key agreement, keys.

Each primitive wraps one loaded key, is immutable and stateless per call (safe to share between
threads), and reports failures with the KubeKMS error taxonomy, never with key material.
"""

from kms_core.primitives.aead import Aead
from kms_core.primitives.agreement import Ecdh
from kms_core.primitives.mac import Hmac
from kms_core.primitives.rsa_oaep import RsaOaep
from kms_core.primitives.signing import Signer, check_arguments, signer_for

__all__ = ["Aead", "Ecdh", "Hmac", "RsaOaep", "Signer", "check_arguments", "signer_for"]
