"""`GET transit/export/:type/:name(/:version)`: a key's versions in OpenBao's export formats.

| type           | keys                   | format (as OpenBao 2.7 exports them)                         |
| encryption-key | aes128/256-gcm96,      | base64 of the raw key                                        |
|                | chacha20-poly1305      |                                                              |
|                | rsa (encrypt-decrypt)  | PKCS#1 PEM `RSA PRIVATE KEY`                                 |
| signing-key    | ecdsa-p256/384/521     | SEC1 PEM `EC PRIVATE KEY` (no final newline)                 |
|                | ed25519                | base64 of seed ‖ public key (64 bytes)                       |
|                | rsa (sign-verify)      | PKCS#1 PEM `RSA PRIVATE KEY`                                 |
| hmac-key       | every type             | base64 of the version's HMAC key (`Keyring.hmac_key`: an     |
|                |                        | hmac key's own; else derived from the version's material)    |
| public-key     | ecdsa-*, rsa, ed25519  | SPKI PEM (EC: no final newline), ed25519: base64 of 32 bytes |

Without `:version` every version still allowed to decrypt is exported; `latest` is the current
one. OpenBao keeps a separate random HMAC key inside every key version; a KubeKMS key's version
derives its own with HKDF-SHA256 (kms_core.keyring.HMAC_KEY_LABEL), and `hmac-key` exports that.

Security property: private material leaves only for keys created exportable, to a caller with
the `export-private-key` permission (`public-key` needs `read` only), and only as the reply.
"""

from __future__ import annotations

from typing import Any, Final

import pybase64
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kms_api.pipeline.call import Call
from kms_api.transit import types
from kms_api.transit.envelope import VaultError, wrap
from kms_api.transit.inputs import project_of
from kms_api.transit.keys import key_name
from kms_core.algorithms import Primitive, spec_of
from kms_core.keyring import Keyring
from kms_core.model import Key, KeyUsage
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["export_key", "export_reply"]

Exported = tuple[Key, dict[str, str]]
_TYPES: Final = ("encryption-key", "signing-key", "hmac-key", "public-key")


def _versions(call: Call, key: Key, ring: Keyring) -> list[int]:
    raw = call.request.match_info.get("version", "")
    if not raw:
        return sorted(ring.versions)
    if raw == "latest":
        return [key.version]
    if not (raw.isascii() and raw.isdigit()):
        raise VaultError(400, "invalid key version")
    version = int(raw)
    if version < key.min_decryption_version:
        raise VaultError(400, "version for export is below minimum decryption version")
    if version not in ring.versions:
        raise VaultError(400, "version does not exist or cannot be found")
    return [version]


def _check_type(kind: str, key: Key) -> None:
    """OpenBao's refusal when the key has no material of this kind."""
    primitive = spec_of(key.algorithm).primitive
    if kind == "encryption-key" and key.key_usage is not KeyUsage.ENCRYPT_DECRYPT:
        raise VaultError(400, "encryption not supported for the key")
    if kind == "signing-key" and key.key_usage is not KeyUsage.SIGN_VERIFY:
        raise VaultError(400, "signing not supported for the key")
    if kind == "public-key" and not spec_of(key.algorithm).is_asymmetric:
        raise VaultError(400, f"unknown key type {types.type_of(key)} for export type public-key")
    if kind in ("encryption-key", "signing-key") and primitive is Primitive.ML_DSA:
        raise VaultError(400, f"unknown key type {types.type_of(key)} for export type {kind}")


def _private_text(key: Key, pem: bytes) -> str:
    """OpenBao's text of one version's private material (`pem`: the core's export format)."""
    primitive = spec_of(key.algorithm).primitive
    if not spec_of(key.algorithm).is_asymmetric:  # AES, ChaCha20, HMAC: the core exports these raw
        return pybase64.b64encode_as_string(pem)
    private = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        seed = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return pybase64.b64encode_as_string(seed + public)
    traditional = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return traditional if primitive is Primitive.RSA else traditional.rstrip("\n")


def _public_text(key: Key, spki_der: bytes) -> str:
    text = types.public_key_text(key, spki_der)
    return text.rstrip("\n") if spec_of(key.algorithm).primitive is Primitive.EC else text


async def export_key(call: Call) -> Outcome[Exported]:
    kind = call.request.match_info["kind"]
    if kind not in _TYPES:
        raise VaultError(400, f"invalid export type: {kind}")
    project, name = project_of(call.request), key_name(call)
    action = Action.READ if kind == "public-key" else Action.EXPORT
    key = await call.service.find_by_name(call.caller, action, project, name)
    if key is None:
        raise VaultError(404)
    if kind != "public-key" and not key.is_exportable:
        raise VaultError(400, "private key material is not exportable")
    _check_type(kind, key)
    ring = await call.service.keyring(key)
    versions = _versions(call, key, ring)
    if kind == "public-key":
        exported = {str(v): _public_text(key, ring.public_key(v)) for v in versions}
    elif kind == "hmac-key":
        exported = {str(v): pybase64.b64encode_as_string(ring.hmac_key(v)) for v in versions}
    else:
        exported = {str(v): _private_text(key, ring.export_private(v)) for v in versions}
    return Outcome((key, exported), key)


def export_reply(call: Call, outcome: Outcome[Exported]) -> dict[str, Any]:
    key, exported = outcome.result
    return wrap({"keys": exported, "name": key.name, "type": types.type_of(key)})
