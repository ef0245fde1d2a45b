"""Key handlers: create (`POST transit/keys/:name`), read, and list (`LIST` or `GET ?list=true`).

A Transit key `orders` in namespace `team-a` is the Infisical key `orders` of project `team-a`.
Creating (kms_api.transit.lifecycle.create_key) an existing key answers that key, as OpenBao
does (whatever `type` the request names). Keys created here are delete-protected (Transit's
`deletion_allowed` defaults to false).

A derived ed25519 key has one key pair per context: its read shows each version's `public_key`
empty, or with `?context=` (base64) the public key that context selects, as OpenBao's.

Security property: replies carry the record allow-list of `types.key_data` and public keys only.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from kms_api.pipeline.call import Call
from kms_api.schema.fields import Slug
from kms_api.transit import types
from kms_api.transit.envelope import UNSUPPORTED_OPERATION, VaultError, wrap
from kms_api.transit.inputs import Base64Error, b64decode, flag, project_of, text
from kms_core import lifecycle
from kms_core.algorithms import Primitive, is_symmetric, spec_of
from kms_core.errors import Issue, NotFound
from kms_core.model import Key, KeySpec
from kms_core.outcome import Outcome
from kms_core.stores.base import ListQuery

__all__ = [
    "checked_name", "creation_spec", "describe", "key_name", "key_reply", "list_keys", "list_reply",
    "read_key",
]  # fmt: skip

# A key with the versions its read shows (kms_api.transit.types.key_data), and Vault's warnings.
KeyRead = tuple[Key, dict[int, types.VersionView], list[str]]
_NAME: Final = Slug("name", max_length=32)
_PAGE: Final = 100


def key_name(call: Call) -> str:
    """The `:name` path segment, held to the names an Infisical key may have (a slug of 1-32)."""
    return checked_name(call.request.match_info["name"])


def checked_name(name: str) -> str:
    """`name` if an Infisical key may have it (a slug of 1-32), else Vault's 400."""
    refusal = _name_refusal(name)
    if refusal is not None:
        raise VaultError(400, refusal)
    return name


@functools.lru_cache(maxsize=1024)
def _name_refusal(name: str) -> str | None:
    """Why `name` is no key name (None: it is one); remembered, as every request of a busy key
    names it again (bounded, so a caller sending many names cannot grow it)."""
    issues: list[Issue] = []
    _NAME.parse(name, (), issues)
    return f"invalid key name: {issues[0].message}" if issues else None


async def describe(
    call: Call, key: Key, warnings: list[str] | None = None, context: bytes | None = None
) -> KeyRead:
    """The key with each version it still decrypts with: its creation time from the store and,
    for asymmetric keys, its public key (a derived key's: the one `context` selects, none
    without a context).

    Read from the store directly: every caller already passed the permission check of the
    operation whose reply this is (read, create, rotate, config, trim), and the reply shows
    creation times and public keys only."""
    allowed = lifecycle.decryption_versions(key)
    stored = {
        v.version: v.created_at for v in await call.service.store.versions(key.id) if v.version in allowed
    }
    publics: dict[int, bytes] = {}
    if spec_of(key.algorithm).is_asymmetric and (context or not key.derived):
        ring = await call.service.keyring(key)
        publics = {v: ring.public_key(v, context) for v in stored if v in ring.versions}
    views = {v: types.VersionView(at, publics.get(v)) for v, at in stored.items()}
    return key, views, list(warnings or ())


def creation_spec(body: dict[str, Any], project: str, name: str, *, derived: bool = False) -> KeySpec:
    """The KeySpec of a create (or an encrypt's upsert) body; Vault's text for an unknown type.
    (`auto_rotate_period` is the create's: kms_api.transit.lifecycle.create_key.)

    `derived`: the upsert of an encrypt that carries a `context` makes a derived key, as OpenBao's."""
    type_name = text(body.get("type"), "type") or types.DEFAULT_TYPE
    found = types.CREATABLE.get(type_name)
    if found is None:
        raise VaultError(400, f"unknown key type {type_name}")
    derived = derived or flag(body.get("derived"), "derived")
    convergent = flag(body.get("convergent_encryption"), "convergent_encryption")
    if convergent and not derived:
        raise VaultError(400, "convergent encryption requires derivation to be enabled")
    is_ed25519 = spec_of(found[0]).primitive is Primitive.ED25519
    if derived and not is_symmetric(found[0]) and not is_ed25519:
        # OpenBao's text (with a 500; KubeKMS answers 400)
        raise VaultError(
            400, f"key derivation and convergent encryption not supported for keys of type {type_name}"
        )
    if convergent and is_ed25519:  # OpenBao's text (with a 500; KubeKMS answers 400)
        raise VaultError(400, f"convergent encryption not supported for keys of type {type_name}")
    key_size = text(body.get("key_size"), "key_size")
    if type_name == "hmac" and key_size not in ("", "0", str(types.HMAC_KEY_SIZE)):
        raise VaultError(400, f"KubeKMS hmac keys are HMAC-SHA-256 keys of {types.HMAC_KEY_SIZE} bytes")
    algorithm, usage = found
    return KeySpec(
        project_id=project,
        name=name,
        key_usage=usage,
        algorithm=algorithm,
        is_exportable=flag(body.get("exportable"), "exportable"),
        has_delete_protection=True,  # Transit: deletion_allowed is false until configured
        derived=derived,
        convergent_encryption=convergent,
        allow_plaintext_backup=flag(body.get("allow_plaintext_backup"), "allow_plaintext_backup"),
    )


async def read_key(call: Call) -> Outcome[KeyRead]:
    project = project_of(call.request)
    name = key_name(call)
    try:
        outcome = await call.service.get_by_name(call.caller, project, name)
    except NotFound:
        raise VaultError(404) from None
    key = outcome.result
    return Outcome(await describe(call, key, context=_read_context(call)), key)


def _read_context(call: Call) -> bytes | None:
    """A key read's `?context=` (base64; derived ed25519 keys' public keys), OpenBao's text for
    one that does not decode."""
    raw = call.request.query.get("context", "")
    if not raw:
        return None
    try:
        return b64decode(raw)
    except Base64Error:
        raise VaultError(400, "failed to base64-decode context") from None


def key_reply(call: Call, outcome: Outcome[KeyRead]) -> dict[str, Any]:
    key, versions, warnings = outcome.result
    body = wrap(types.key_data(key, versions))
    if warnings:
        body["warnings"] = warnings
    return body


async def list_keys(call: Call) -> Outcome[list[str]]:
    """Every key name of the namespace's project, sorted (OpenBao's order)."""
    request = call.request
    if request.method == "GET" and not flag(request.query.get("list"), "list"):
        raise VaultError(405, UNSUPPORTED_OPERATION)
    project = project_of(request)
    names: list[str] = []
    offset = 0
    while True:
        page = await call.service.list(call.caller, ListQuery(project_id=project, offset=offset, limit=_PAGE))
        keys, total = page.result
        names.extend(k.name for k in keys)
        offset += len(keys)
        if not keys or offset >= total:
            break
    if not names:
        raise VaultError(404)
    return Outcome(sorted(names), None, project)


def list_reply(call: Call, outcome: Outcome[list[str]]) -> dict[str, Any]:
    return wrap({"keys": outcome.result})
