"""`rewrap` (decrypt and encrypt again under the latest or a chosen version, the plaintext never
leaving the process) and `datakey/plaintext|wrapped` (a fresh random data key, encrypted under
the named key; `plaintext` also returns it).

Both run through the same `KeyService` encrypt and decrypt as `transit/encrypt` and
`transit/decrypt` (kms_api.transit.crypto), so the version bounds, permissions and metrics are
the core's. Rewrap needs `decrypt` (checked when the key is resolved) and `encrypt` (checked by
the core's encrypt).

Security property: rewrap's plaintext exists only between the two core calls and is never
returned; a data key is returned in plaintext only by `datakey/plaintext`, to a caller allowed to
encrypt with the key.
"""

from __future__ import annotations

import secrets
from typing import Final

import pybase64

from kms_api.http.json_body import CRYPTO_LIMIT, DEFAULT_LIMIT
from kms_api.pipeline.call import Call
from kms_api.transit import framing, types
from kms_api.transit.crypto import (
    Batch,
    Item,
    _grant,  # the batch helpers of the crypto routes, shared on purpose
    _items,
    _run,
    open_ciphertext,
    requested_version,
)
from kms_api.transit.envelope import VaultError
from kms_api.transit.inputs import integer, project_of, read_body
from kms_api.transit.keys import key_name
from kms_core import ciphertext
from kms_core.grant import KeyRef
from kms_core.model import Key, KeyUsage
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["datakey", "rewrap"]

_BITS: Final = (128, 256, 512)


def _encryption_key(key: Key) -> None:
    if key.key_usage is not KeyUsage.ENCRYPT_DECRYPT:
        raise VaultError(400, f"message encryption not supported for key type {types.type_of(key)}")


async def _seal(call: Call, ref: KeyRef, plaintext: bytes, version: int | None) -> Item:
    """`plaintext` encrypted under the key `ref` names (a grant for `encrypt`, or the key's id:
    then the core looks it up and asks the policy), framed as Transit's ciphertext."""
    blob = (await call.service.encrypt(call.caller, ref, plaintext, version)).result
    raw, used = ciphertext.unpack(blob)
    return {"ciphertext": framing.vault(used or 1, raw), "key_version": used or 1}


async def rewrap(call: Call) -> Outcome[Batch]:
    body = await read_body(call.request, CRYPTO_LIMIT)
    project, name = project_of(call.request), key_name(call)
    items = _items(body)
    if items is None and not body.get("ciphertext"):
        raise VaultError(400, "missing ciphertext to decrypt")
    grant = await _grant(call, Action.DECRYPT, project, name, "encryption key not found")
    key = grant.key
    if key.key_usage is not KeyUsage.ENCRYPT_DECRYPT:
        raise VaultError(400, f"message decryption not supported for key type {types.type_of(key)}")

    async def one(item: Item, _index: int) -> Item:
        version = requested_version(item)
        plaintext = await open_ciphertext(call, key, item, grant)
        # The grant is for decrypt: the core checks encrypt by the key's id.
        return await _seal(call, key.id, plaintext, version)

    # OpenBao answers a rewrap batch with failed items 200 (unlike encrypt and decrypt).
    return Outcome(await _run(items, body, one, lambda error, item: {"error": error}), key)


async def datakey(call: Call) -> Outcome[Batch]:
    body = await read_body(call.request, DEFAULT_LIMIT)
    kind = call.request.match_info["kind"]
    project, name = project_of(call.request), key_name(call)
    if kind not in ("plaintext", "wrapped"):
        raise VaultError(400, "Invalid path, must be 'plaintext' or 'wrapped'")
    bits = integer(body["bits"], "bits") if body.get("bits") is not None else 256
    if bits not in _BITS:
        raise VaultError(400, "invalid bit length")
    grant = await _grant(call, Action.ENCRYPT, project, name, "encryption key not found")
    key = grant.key
    _encryption_key(key)

    async def one(item: Item, _index: int) -> Item:
        data_key = secrets.token_bytes(bits // 8)
        sealed = await _seal(call, grant, data_key, requested_version(item))
        if kind == "plaintext":
            sealed["plaintext"] = pybase64.b64encode_as_string(data_key)
        return sealed

    return Outcome(await _run(None, body, one, lambda error, item: {"error": error}), key)
