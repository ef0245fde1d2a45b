"""Transit BYOK: `GET transit/wrapping_key`, `POST transit/keys/:name/import` and
`POST transit/keys/:name/import_version`, in OpenBao 2.7's formats (kms_api.transit.byok).

Material as OpenBao takes it: raw key bytes for aes128/256-gcm96, chacha20-poly1305 and hmac
(32 bytes); PKCS#8 DER private keys for ecdsa-*, ed25519 and rsa-*. It then goes through the
core's import checks (kms_core.material.parse_import: the declared type, weak keys) and is
sealed and stored like generated material, so an imported key is a key like any other, in both
dialects. Kubernetes mode refuses import (the operator is the only writer of key material).

Keys made here are marked imported (`imported_key`) with their `allow_rotation`, as OpenBao's:
rotating one without it is refused, `import_version` takes imported keys only, and a rotation
to generated material clears the mark (kms_core.model.Key.imported).

Differences from OpenBao (README "Vault Transit API"): OpenBao answers most failures here with a
500, KubeKMS with a 400 and the same text; derived AEAD keys are not imported (OpenBao gives them
its legacy KDF, `hmac-sha256-counter`, which KubeKMS does not implement). A derived ed25519 key
is imported with the HKDF-SHA256 derivation of the derived ed25519 keys OpenBao creates, so one
exported from OpenBao signs in KubeKMS exactly as it did there; OpenBao's own import gives it
the legacy KDF, with which OpenBao cannot sign at all (its 500 `ed25519: bad private key length: 32`).

Security property: the permission (`create`; `rotate` for a version) is decided before the
ciphertext is unwrapped, so a caller without it never reaches the wrapping key; the material is
unwrapped, checked and sealed off the event loop and never logged or echoed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from kms_api.appstate import SETTINGS
from kms_api.http.json_body import DEFAULT_LIMIT
from kms_api.pipeline.call import Call
from kms_api.transit import byok, types
from kms_api.transit.envelope import VaultError, wrap
from kms_api.transit.inputs import Base64Error, b64decode, flag, project_of, read_body, text
from kms_api.transit.keys import key_name
from kms_api.transit.lifecycle import SOFT_DELETED, apply_rotation_period
from kms_core.algorithms import spec_of
from kms_core.errors import BadRequest, DuplicateName
from kms_core.model import Algorithm, KeySpec
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = [
    "embedded_only",
    "import_key",
    "import_version",
    "no_content",
    "wrapping_key",
    "wrapping_key_reply",
]

KUBERNETES_REFUSED: Final = (
    "Importing key material is not supported in Kubernetes mode: the operator is the only writer of "
    "key material. Restore existing material by creating a KmsKey with spec.keyId instead."
)
_EXISTS: Final = (
    "the import path cannot be used with an existing key; use import-version to rotate an existing "
    "imported key"
)


def embedded_only(call: Call) -> None:
    """Vault's 400 in Kubernetes mode, where the operator is the only writer of key material."""
    if call.request.app[SETTINGS].store != "embedded":
        raise VaultError(400, KUBERNETES_REFUSED)


async def _wrapping(call: Call) -> byok.WrappingKey:
    settings = call.request.app[SETTINGS]
    return await call.request.app[byok.WRAPPING].get(settings.data_dir, call.service.sealer)


async def wrapping_key(call: Call) -> Outcome[str]:
    """The RSA-4096 public key import ciphertexts are wrapped for (PEM SPKI)."""
    project = project_of(call.request)
    await call.service.allow(call.caller, Action.READ, project, None)
    embedded_only(call)
    return Outcome((await _wrapping(call)).public_pem, None, project)


def wrapping_key_reply(call: Call, outcome: Outcome[str]) -> dict[str, Any]:
    return wrap({"public_key": outcome.result})


def _hash_function(body: dict[str, Any]) -> str:
    name = text(body.get("hash_function"), "hash_function") or "SHA256"
    if name not in byok.HASH_FUNCTIONS:
        raise VaultError(400, f"unknown hash function: {name}")
    return name


def _ciphertext(body: dict[str, Any]) -> bytes:
    if body.get("public_key") is not None:
        raise VaultError(400, "KubeKMS does not import public keys alone: import the private key")
    value = text(body.get("ciphertext"), "ciphertext")
    if not value:
        raise VaultError(400, "provided type does not support public_key import")  # OpenBao's text
    try:
        return b64decode(value)
    except Base64Error as exc:
        raise VaultError(400, str(exc)) from None


def _core_material(algorithm: Algorithm, type_name: str, raw: bytes) -> bytes:
    """OpenBao's import format -> the core's import format (raw bytes; a PKCS#8 PEM key)."""
    spec = spec_of(algorithm)
    if not spec.is_asymmetric:
        if len(raw) != spec.key_bytes:
            raise VaultError(
                400, f"error importing key: invalid key size {len(raw)} bytes for key type {type_name}"
            )
        return raw
    try:
        private = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError):
        raise VaultError(
            400, "error importing key: error parsing asymmetric key: not a PKCS#8 DER private key"
        ) from None
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _source(
    wrapping: byok.WrappingKey, blob: bytes, hash_function: str, algorithm: Algorithm, type_name: str
) -> Callable[[], bytes]:
    def material() -> bytes:
        return _core_material(algorithm, type_name, wrapping.unwrap(blob, hash_function))

    return material


def _core_refusal(exc: BadRequest) -> VaultError:
    if isinstance(exc, VaultError):
        return exc
    return VaultError(400, f"error importing key: {exc.message}")


async def import_key(call: Call) -> Outcome[None]:
    """A new key made of the client's wrapped material; 204 as OpenBao."""
    body = await read_body(call.request, DEFAULT_LIMIT)
    project, name = project_of(call.request), key_name(call)
    type_name = text(body.get("type"), "type") or types.DEFAULT_TYPE
    found = types.CREATABLE.get(type_name)
    if found is None:
        raise VaultError(400, f"unknown key type: {type_name}")
    hash_function = _hash_function(body)
    blob = _ciphertext(body)
    derived = flag(body.get("derived"), "derived")
    if flag(body.get("convergent_encryption"), "convergent_encryption"):
        raise VaultError(400, "import cannot be used on keys with convergent encryption enabled")
    if derived and type_name != "ed25519":
        raise VaultError(
            400,
            "KubeKMS imports derived ed25519 keys only: OpenBao derives imported keys with its legacy KDF "
            "(hmac-sha256-counter), KubeKMS with HKDF-SHA256",
        )
    rotation = body.get("auto_rotate_period")
    if text(rotation, "auto_rotate_period") not in ("", "0", "0s") and not flag(
        body.get("allow_rotation"), "allow_rotation"
    ):
        raise VaultError(400, "allow_rotation must be set to true if auto-rotation is enabled")
    algorithm, usage = found
    spec = KeySpec(
        project_id=project, name=name, key_usage=usage, algorithm=algorithm,
        is_exportable=flag(body.get("exportable"), "exportable"),
        has_delete_protection=True,  # Transit: deletion_allowed is false until configured
        derived=derived,  # ed25519 only (above): HKDF-SHA256, kms_core.derivation
        allow_plaintext_backup=flag(body.get("allow_plaintext_backup"), "allow_plaintext_backup"),
        imported=True, allow_rotation=flag(body.get("allow_rotation"), "allow_rotation"),
    )  # fmt: skip
    embedded_only(call)
    wrapping = await _wrapping(call)  # public: the permission is the core's, before unwrapping
    source = _source(wrapping, blob, hash_function, algorithm, type_name)
    try:
        key = (await call.service.import_key(call.caller, spec, source)).result
    except DuplicateName:
        raise VaultError(400, _EXISTS) from None
    except BadRequest as exc:
        raise _core_refusal(exc) from None
    key = await apply_rotation_period(call, key, body)
    return Outcome(None, key)


async def import_version(call: Call) -> Outcome[None]:
    """A new latest version of an existing key made of the client's wrapped material."""
    body = await read_body(call.request, DEFAULT_LIMIT)
    project, name = project_of(call.request), key_name(call)
    hash_function = _hash_function(body)
    blob = _ciphertext(body)
    if body.get("version") is not None:
        raise VaultError(400, "provided type does not support importing key versions")  # OpenBao's text
    grant = await call.service.grant_by_name(call.caller, Action.ROTATE, project, name)
    if grant is None:
        raise VaultError(400, f"no key found with name {name}; to import a new key, use the import/ endpoint")
    key = grant.key
    if key.is_disabled:
        raise VaultError(400, SOFT_DELETED)
    if not key.imported:  # OpenBao's text (its 500); a rotation to generated material clears it
        raise VaultError(400, "the import_version endpoint can only be used with an imported key")
    embedded_only(call)
    wrapping = await _wrapping(call)
    source = _source(wrapping, blob, hash_function, key.algorithm, types.type_of(key))
    try:
        updated = (await call.service.import_version(call.caller, grant, source)).result
    except BadRequest as exc:
        raise _core_refusal(exc) from None
    return Outcome(None, updated)


def no_content(call: Call, outcome: Outcome[Any]) -> web.Response:
    return web.Response(status=204)
