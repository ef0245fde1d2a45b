"""Encrypt, decrypt, HMAC, sign and verify, each for one input or a `batch_input` list.

A request is resolved once (`KeyService.grant_by_name` with the operation's action: one lookup,
one policy decision), then every item runs through the same `KeyService` operation the Infisical
routes call, with that grant in place of the key id, so the checks (disabled, usage) and
metrics are the core's and nothing is looked up or authorised twice. A batch encrypt is one core
call for all its items (`KeyService.encrypt_many`); a request without `batch_input` calls the
core's single-item operation directly. Items fail on their own: the
batch reply lists a result or an `error` per item, in order, with its `reference`; encrypt and
decrypt answer 400 when any item failed (as OpenBao does), the others 200. A single input that
fails is the request's error.

AES ciphertexts are re-framed, never re-encrypted (kms_api.transit.framing).

Security property: plaintexts, ciphertexts, signatures and MACs are only decoded, handed to the
core and encoded into the reply; error texts name fields and offsets, never values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import pybase64
from aiohttp import web

from kms_api.http.json_body import CRYPTO_LIMIT
from kms_api.pipeline.call import Call
from kms_api.transit import framing, signing, types
from kms_api.transit.envelope import VaultError, wrapped
from kms_api.transit.inputs import Base64Error, b64decode, integer, project_of, read_body, text
from kms_api.transit.keys import creation_spec, key_name
from kms_api.transit.lifecycle import SOFT_DELETED
from kms_core import ciphertext
from kms_core.algorithms import AEADS, Primitive, spec_of
from kms_core.batch import EncryptItem
from kms_core.errors import BadRequest, DecryptionFailed, DuplicateName, KmsError
from kms_core.grant import Grant, KeyRef
from kms_core.lifecycle import VersionDisallowed
from kms_core.model import Key, KeyUsage
from kms_core.outcome import Outcome
from kms_core.policy import Action
from kms_core.signing_options import SigningOptions

__all__ = [
    "Batch",
    "batch_reply",
    "decrypt",
    "encrypt",
    "hmac",
    "sign",
    "verify",
]

Item = dict[str, Any]
_GCM_OVERHEAD: Final = 12 + 16  # nonce + tag
_BAD_HMAC_ALGORITHM: Final = "unsupported algorithm '\\x00'"
_V1: Final = "vault:v1:"


class ItemError(Exception):
    """One item's failure: its text goes into the item's `error` (or is the request's error)."""


@dataclass(slots=True)
class Batch:
    """Per-item results; `single` when the request had no `batch_input`."""

    results: list[Item]
    single: bool
    fail_status: int  # the reply's status when an item failed (400 encrypt/decrypt, else 200)


def batch_reply(call: Call, outcome: Outcome[Batch]) -> web.Response:
    batch = outcome.result
    if batch.single:
        return wrapped(batch.results[0])
    failed = any("error" in r for r in batch.results)
    return wrapped({"batch_results": batch.results}, batch.fail_status if failed else 200)


def _items(body: dict[str, Any]) -> list[Item] | None:
    """The `batch_input` list (None without one); OpenBao's text for an empty one."""
    raw = body.get("batch_input")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise VaultError(400, "failed to parse batch input: source data must be an array or slice")
    if not raw:
        raise VaultError(400, "missing batch input to process")
    return raw


async def _grant(call: Call, action: Action, project: str, name: str, missing: str) -> Grant:
    """The key by name as a `Grant`: the items' operations neither look it up nor ask the policy
    again (one lookup and one decision per request, as a call by id)."""
    grant = await call.service.grant_by_name(call.caller, action, project, name)
    if grant is None:
        raise VaultError(400, missing)
    if grant.key.is_disabled:  # Transit's soft deletion is Infisical's disable
        raise VaultError(400, SOFT_DELETED)
    return grant


def requested_version(item: Item, verb: str = "encryption") -> int | None:
    """An item's `key_version` (None or 0: the latest), OpenBao's text for a negative one; the
    core checks it against the key's bounds (kms_core.lifecycle.encryption_version)."""
    value = item.get("key_version")
    version = integer(value, "key_version") if value is not None else 0
    if version < 0:
        raise ItemError(f"requested version for {verb} is negative")
    return version or None


async def _run(
    items: list[Item] | None,
    body: Item,
    work: Callable[[Item, int], Awaitable[Item]],
    failed: Callable[[str, Item], Item],
    fail_status: int = 200,
) -> Batch:
    """Run `work(item, index)` per item; an item's failure becomes `failed(text, item)` (with
    its reference). A request without `batch_input` is one call, its failure the request's."""
    if items is None:
        try:
            return Batch([await work(body, 0)], True, fail_status)
        except ItemError as exc:
            raise VaultError(400, str(exc)) from None
    results: list[Item] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append({**failed("batch item is not an object", {}), "reference": ""})
            continue
        reference = text(item.get("reference"), "reference")
        try:
            result = await work(item, index)
        except ItemError as exc:
            result = failed(str(exc), item)
        except KmsError as exc:  # e.g. the key was disabled meanwhile: this item only
            result = failed(exc.message, item)
        results.append({**result, "reference": reference})
    return Batch(results, False, fail_status)


def _decode(value: Any, field: str, wording: str = "") -> bytes:
    try:
        return b64decode(text(value, field))
    except Base64Error as exc:
        raise ItemError(f"{wording}{exc}") from None
    except VaultError as exc:
        raise ItemError(exc.message) from None


# -- encrypt / decrypt -------------------------------------------------------------------------

# Go's texts for a ciphertext that does not authenticate, per AEAD.
_AUTH_FAILED: Final = {
    Primitive.AES_GCM: "cipher: message authentication failed",
    Primitive.CHACHA20: "chacha20poly1305: message authentication failed",
}


def _encrypts(key: Key) -> bool:
    """Encrypt-decrypt keys, and RSA keys of either usage (OpenBao's rsa-* keys do both)."""
    return key.key_usage is KeyUsage.ENCRYPT_DECRYPT or spec_of(key.algorithm).dual_use


def _has_context(items: list[Item] | None, body: Item) -> bool:
    """Whether the request carries a `context`; OpenBao's 400 when only some batch items do."""
    if items is None:
        return bool(text(body.get("context"), "context"))
    given = [bool(text(i.get("context"), "context")) for i in items if isinstance(i, dict)]
    if any(given) and not all(given):
        raise VaultError(400, "context should be set either in all the request blocks or in none")
    return any(given)


def _context(item: Item) -> bytes | None:
    """An item's `context` (derived keys' key selector), decoded; ignored by other keys."""
    value = text(item.get("context"), "context")
    if not value:
        return None
    try:
        return b64decode(value)
    except Base64Error as exc:
        raise ItemError(str(exc)) from None


def _associated_data(item: Item, key: Key, index: int) -> bytes | None:
    """An item's `associated_data` (AEAD keys only), decoded; OpenBao's texts for the errors.

    OpenBao answers a bad base64 here with a 500; KubeKMS with a 400 and the same text."""
    value = text(item.get("associated_data"), "associated_data")
    if not value:
        return None
    if spec_of(key.algorithm).primitive not in AEADS:
        raise ItemError(
            f"'[{index}].associated_data' provided for non-AEAD cipher suite {types.type_of(key)}"
        )
    try:
        return b64decode(value)
    except Base64Error as exc:
        raise ItemError(f"unable to get associated_data/additional_data from factory[0]: {exc}") from None


async def encrypt(call: Call) -> Outcome[Batch]:
    request = call.request
    body = await read_body(request, CRYPTO_LIMIT)
    project, name = project_of(request), key_name(call)
    items = _items(body)
    if items is None:
        if body.get("plaintext") is None:
            raise VaultError(400, "missing plaintext to encrypt")
        has_context = bool(text(body.get("context"), "context"))
    else:
        has_context = _has_context(items, body)
    service, caller = call.service, call.caller
    grant = await service.grant_by_name(caller, Action.ENCRYPT, project, name)
    key_id: KeyRef
    if grant is not None:
        key, key_id = grant.key, grant
    else:  # Transit's upsert: encrypting with a missing key creates it (derived with a context)
        try:
            spec = creation_spec(body, project, name, derived=has_context)
            key = (await service.create(caller, spec)).result
            key_id = key.id
        except DuplicateName:  # created concurrently
            found = await _grant(call, Action.ENCRYPT, project, name, "encryption key not found")
            key, key_id = found.key, found
    if not _encrypts(key):
        raise VaultError(400, f"message encryption not supported for key type {types.type_of(key)}")
    if items is not None:
        return Outcome(await _encrypt_batch(call, key, key_id, items), key)
    # One input: the core's single-item call, its failure the request's.
    try:
        one = _encrypt_item(key, body, 0)
    except ItemError as exc:
        raise VaultError(400, str(exc)) from None
    blob = (
        await service.encrypt(
            caller, key_id, one.plaintext, one.version, aad=one.aad, context=one.context, dual_use=True
        )
    ).result
    return Outcome(Batch([_sealed(blob)], True, 400), key)


def _encrypt_item(key: Key, item: Item, index: int) -> EncryptItem:
    """An item's request to the core, or ItemError in OpenBao's words."""
    if key.is_disabled:
        raise ItemError(SOFT_DELETED)
    if item.get("plaintext") is None:
        raise ItemError("missing plaintext to encrypt")
    plaintext = _decode(item["plaintext"], "plaintext")
    version = requested_version(item)
    return EncryptItem(plaintext, version, _associated_data(item, key, index), _context(item))


def _sealed(blob: bytes) -> Item:
    """The core's ciphertext as a Transit item: Infisical's trailer becomes the `vault:v<N>:` prefix."""
    if blob.endswith(ciphertext.V01):  # version 1, the common case: no trailer to parse
        return {"ciphertext": _V1 + pybase64.b64encode_as_string(blob[:-3]), "key_version": 1}
    raw, trailer_version = ciphertext.unpack(blob)
    version = trailer_version or 1
    return {"ciphertext": framing.vault(version, raw), "key_version": version}


async def _encrypt_batch(call: Call, key: Key, key_id: KeyRef, items: list[Item]) -> Batch:
    """Every item read first (a bad one gets its `error`), then all good ones encrypted by one
    core call (`KeyService.encrypt_many`: one lookup, one policy decision and one keyring per
    batch), the results put back in the request's order with their `reference`."""
    results: list[Item | None] = []
    references: list[str] = []
    requests: list[EncryptItem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append({"error": "batch item is not an object"})
            references.append("")
            continue
        references.append(text(item.get("reference"), "reference"))
        try:
            requests.append(_encrypt_item(key, item, index))
            results.append(None)
        except ItemError as exc:
            results.append({"error": str(exc)})
        except KmsError as exc:  # e.g. a field of the wrong type: this item only
            results.append({"error": exc.message})
    sealed: Iterator[bytes | BadRequest] = iter(())
    if requests:
        sealed = iter((await call.service.encrypt_many(call.caller, key_id, requests, dual_use=True)).result)
    merged: list[Item] = []
    for result, reference in zip(results, references, strict=True):
        if result is None:
            blob = next(sealed)
            result = {"error": blob.message} if isinstance(blob, BadRequest) else _sealed(blob)
        merged.append({**result, "reference": reference})
    return Batch(merged, False, 400)


async def decrypt(call: Call) -> Outcome[Batch]:
    body = await read_body(call.request, CRYPTO_LIMIT)
    project, name = project_of(call.request), key_name(call)
    items = _items(body)
    if items is None and not text(body.get("ciphertext"), "ciphertext"):
        raise VaultError(400, "missing ciphertext to decrypt")
    _has_context(items, body)
    grant = await _grant(call, Action.DECRYPT, project, name, "encryption key not found")
    key = grant.key
    if not _encrypts(key):
        raise VaultError(400, f"message decryption not supported for key type {types.type_of(key)}")

    async def one(item: Item, index: int) -> Item:
        aad = _associated_data(item, key, index)
        plaintext = await open_ciphertext(call, key, item, grant, aad=aad, context=_context(item))
        return {"plaintext": pybase64.b64encode_as_string(plaintext)}

    batch = await _run(items, body, one, lambda error, item: {"plaintext": "", "error": error}, 400)
    return Outcome(batch, key)


async def open_ciphertext(
    call: Call, key: Key, item: Item, ref: KeyRef | None = None, *,
    aad: bytes | None = None, context: bytes | None = None,
) -> bytes:
    """The plaintext of an item's `ciphertext` (decrypt, rewrap), ItemError in OpenBao's words;
    `ref` is the request's grant when it has one (else the key is looked up by id)."""
    primitive = spec_of(key.algorithm).primitive
    is_aead = primitive in AEADS
    value = text(item.get("ciphertext"), "ciphertext")
    if not value:
        raise ItemError("missing ciphertext to decrypt")
    try:
        version, encoded = framing.split(value)
    except framing.FrameError as exc:
        raise ItemError(f"invalid ciphertext: {exc}") from None
    if version > key.version:
        raise ItemError("invalid ciphertext: version is too new")
    try:
        payload = b64decode(encoded)
    except Base64Error:
        raise ItemError("invalid ciphertext: could not decode base64") from None
    if is_aead and len(payload) < _GCM_OVERHEAD:
        raise ItemError("invalid ciphertext length")
    blob = framing.to_infisical(framing.Frame(version, payload))
    try:
        return (
            await call.service.decrypt(
                call.caller, key.id if ref is None else ref, blob, aad=aad, context=context, dual_use=True
            )
        ).result
    except DecryptionFailed:
        raise ItemError(_AUTH_FAILED.get(primitive, "crypto/rsa: decryption error")) from None


# -- HMAC --------------------------------------------------------------------------------------


_VAULT_HMAC: Final = {vault: hashlib_name for hashlib_name, vault in types.HMAC_HASHES.items()}


def _hmac_hash(call: Call, body: Item, verifying: bool) -> str:
    """The hash an HMAC request names (hashlib's), as OpenBao reads it: the path's, else the
    body's `algorithm` (verify: `hash_algorithm` too), default sha2-256; every key type MACs
    (`Keyring.hmac_key`). OpenBao's texts: hmac and verify word an unknown hash differently."""
    if verifying:
        name = signing.hash_name(call.request, body)
        if name not in signing.VAULT_HASHES:
            raise VaultError(400, f'invalid hash algorithm "{name}"')
    else:
        # An explicit empty `algorithm` is no default here (OpenBao's 400), unlike sign's.
        named = call.request.match_info.get("algorithm")
        given = body.get("algorithm")
        name = named or ("sha2-256" if given is None else text(given, "algorithm"))
    if name not in _VAULT_HMAC:
        raise VaultError(400, _BAD_HMAC_ALGORITHM)
    return _VAULT_HMAC[name]


async def hmac(call: Call) -> Outcome[Batch]:
    body = await read_body(call.request, CRYPTO_LIMIT)
    project, name = project_of(call.request), key_name(call)
    items = _items(body)
    if items is None and body.get("input") is None:
        raise VaultError(400, "missing input for HMAC")
    grant = await _grant(call, Action.GENERATE_MAC, project, name, "encryption key not found")
    key = grant.key
    hash_name = _hmac_hash(call, body, verifying=False)
    service, caller = call.service, call.caller

    async def one(item: Item, _index: int) -> Item:
        if item.get("input") is None:
            raise ItemError("missing input for HMAC")
        data = _decode(item["input"], "input", "unable to decode input as base64: ")
        version = requested_version(item)
        try:
            mac = (await service.generate_mac(caller, grant, data, version, hash_name=hash_name)).result
        except BadRequest as exc:
            if exc.message.startswith("requested version for encryption is higher"):
                raise ItemError(f"key version does not exist; latest key version is {key.version}") from None
            raise
        return {"hmac": framing.vault(version or key.version, mac)}

    return Outcome(await _run(items, body, one, lambda error, item: {"error": error}), key)


# -- sign / verify ----------------------------------------------------------------------------


def _signing(call: Call, body: Item, key: Key, verb: str, salt: int) -> SigningOptions:
    """The core's signing options a Transit sign/verify request names, or Vault's 400
    (kms_api.transit.signing)."""
    if key.key_usage is not KeyUsage.SIGN_VERIFY and not spec_of(key.algorithm).dual_use:
        raise VaultError(400, f"key type {types.type_of(key)} does not support {verb}")
    return signing.options(call.request, body, key, salt)


async def sign(call: Call) -> Outcome[Batch]:
    body = await read_body(call.request, CRYPTO_LIMIT)
    project, name = project_of(call.request), key_name(call)
    items = _items(body)
    marshaling = signing.marshaling(body)
    grant = await _grant(call, Action.SIGN, project, name, "signing key not found")
    key = grant.key
    options = _signing(call, body, key, "signing", marshaling.salt)
    service, caller = call.service, call.caller

    async def one(item: Item, _index: int) -> Item:
        data = _decode(item.get("input"), "input", "unable to decode input as base64: ")
        version = requested_version(item, "signing")
        try:
            context = signing.context(item.get("context"))
        except signing.ContextError as exc:
            raise ItemError(str(exc)) from None
        try:
            signature = (
                await service.sign(
                    caller, grant, options, data, options.prehashed, version, dual_use=True, context=context
                )
            ).result
        except BadRequest as exc:
            if exc.message.startswith("requested version for encryption"):  # OpenBao's words for signing
                raise ItemError(exc.message.replace("for encryption", "for signing", 1)) from None
            if signing.lacks_context(exc):
                raise ItemError(signing.DERIVING) from None
            raise
        used = version or key.version
        encoded = signing.encode(key, signature, marshaling.jws)
        result: Item = {"key_version": used, "signature": f"vault:v{used}:{encoded}"}
        if key.derived:  # the public key of this context (OpenBao names it so in batch items)
            public = (await service.keyring(key)).public_key(used, context)
            result["publickey" if items is not None else "public_key"] = types.public_key_text(key, public)
        return result

    failed: Callable[[str, Item], Item] = lambda error, item: {"key_version": 0, "error": error}  # noqa: E731
    return Outcome(await _run(items, body, one, failed), key)


async def verify(call: Call) -> Outcome[Batch]:
    """Signatures (`signature`) and HMACs (`hmac`) share the route, as in Transit; the action
    checked is the mode's (VERIFY, or VERIFY_MAC for HMACs)."""
    body = await read_body(call.request, CRYPTO_LIMIT)
    project, name = project_of(call.request), key_name(call)
    items = _items(body)
    sample = items[0] if items and isinstance(items[0], dict) else body
    is_mac = not text(sample.get("signature"), "signature") and bool(text(sample.get("hmac"), "hmac"))
    if not is_mac and not text(sample.get("signature"), "signature"):
        raise VaultError(400, "neither a 'signature' nor an 'hmac' were given to verify")
    marshaling = signing.marshaling(body)
    if is_mac:
        grant = await _grant(call, Action.VERIFY_MAC, project, name, "encryption key not found")
        key = grant.key
        hash_name = _hmac_hash(call, body, verifying=True)
    else:
        grant = await _grant(call, Action.VERIFY, project, name, "signature verification key not found")
        key = grant.key
        options = _signing(call, body, key, "verification", marshaling.salt)
    service, caller = call.service, call.caller

    async def one(item: Item, _index: int) -> Item:
        data = _decode(item.get("input"), "input", "unable to decode input as base64: ")
        what = "HMAC" if is_mac else "signature"
        value = text(item.get("hmac" if is_mac else "signature"), what)
        try:
            context = None if is_mac else signing.context(item.get("context"))
        except signing.ContextError as exc:
            raise ItemError(str(exc)) from None
        try:
            version, encoded = framing.split(value)
        except framing.FrameError as exc:
            raise ItemError(f"invalid {what}{' to verify' if is_mac else ''}: {exc}") from None
        if version > key.version:
            raise ItemError(f"invalid {what}{' to verify' if is_mac else ''}: version is too new")
        if is_mac:
            mac = _decode(encoded, "hmac", "unable to decode verification HMAC as base64: ")
            try:
                verdict = await service.verify_mac(caller, grant, data, mac, version, hash_name=hash_name)
                return {"valid": verdict.result}
            except VersionDisallowed:
                raise ItemError("cannot verify HMAC: version is too old (disallowed by policy)") from None
        try:
            signature = signing.decode(key, encoded, marshaling.jws)
        except signing.SignatureError as exc:
            raise ItemError(str(exc)) from None
        if signature is None:
            return {"valid": False}
        # The version the signature names: one below min_decryption_version is refused.
        try:
            valid = (
                await service.verify(
                    caller, grant, options, data, signature, options.prehashed, version, dual_use=True,
                    context=context,
                )
            ).result
        except BadRequest as exc:
            if signing.lacks_context(exc):
                raise ItemError(signing.DERIVING) from None
            raise
        return {"valid": valid}

    def failed(error: str, item: Item) -> Item:
        return {"error": error} if is_mac else {"valid": False, "error": error}

    batch = await _run(items, body, one, failed)
    if is_mac and not batch.single:
        # OpenBao omits a false `valid` from HMAC batch items (Go's omitempty).
        for result in batch.results:
            if result.get("valid") is False:
                del result["valid"]
    return Outcome(batch, key)
