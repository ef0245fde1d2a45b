"""Key lifecycle through Transit: `keys/:name/rotate`, `keys/:name/config`, `keys/:name/trim`,
`DELETE keys/:name`, and OpenBao's soft deletion (`DELETE keys/:name/soft-delete`,
`keys/:name/soft-delete-restore`), each over the core's lifecycle (kms_core.lifecycle), so the
rules are the ones both dialects and the `KmsKey` spec share.

Mappings onto the core (README "Vault Transit API"):
- rotate rotates every usage (`KeyService.rotate(any_usage=True)`);
- `deletion_allowed` is the inverse of Infisical's delete protection;
- OpenBao's soft deletion is Infisical's `isDisabled`: the key stays listed and readable
  (`soft_deleted: true`), every use is refused, config still works, restore re-enables it;
- a hard delete is the core's delete: with a recovery window configured the key leaves both
  dialects at once and stays restorable (same material and versions) through the Infisical
  dialect's deleted-keys routes until the window ends.

Security property: each handler resolves the key with its own action (rotate, edit, delete)
before it learns whether the key exists, and replies with the record allow-list of
`types.key_data`; trimming destroys material only under the core's `check_trim` rules.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from kms_api.http.json_body import DEFAULT_LIMIT
from kms_api.pipeline.call import Call
from kms_api.transit.envelope import VaultError
from kms_api.transit.inputs import flag, integer, project_of, read_body, text
from kms_api.transit.keys import KeyRead, creation_spec, describe, key_name, key_reply
from kms_core import lifecycle
from kms_core.errors import BadRequest, DuplicateName
from kms_core.lifecycle import PolicyChange
from kms_core.model import Key
from kms_core.outcome import Outcome
from kms_core.policy import Action
from kms_core.service import IMPORTED_NOT_ROTATABLE

__all__ = [
    "SOFT_DELETED",
    "apply_rotation_period",
    "configure_key",
    "create_key",
    "delete_key",
    "maybe_key_reply",
    "no_content",
    "optional_flag",
    "rotate_key",
    "soft_delete",
    "soft_restore",
    "trim_key",
]

SOFT_DELETED: Final = "refusing to use soft-deleted key"
_FIELD: Final = "Field validation failed: "
# The core's texts are OpenBao's but for this warning, which OpenBao words otherwise.
_OPENBAO_TEXT: Final = {
    "transit key numbering starts at 1; forcing minimum to 1":
        "since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; "
        "forcing minimum to 1",
}  # fmt: skip


def _openbao(message: str) -> str:
    return _OPENBAO_TEXT.get(message, message)


def optional_flag(body: dict[str, Any], field: str) -> bool | None:
    """A boolean field as Vault reads it, None when absent; OpenBao's text for a bad one."""
    value = body.get(field)
    if value is None:
        return None
    try:
        return flag(value, field)
    except VaultError:
        raise VaultError(
            400,
            f"{_FIELD}error converting input for field \"{field}\": '' cannot parse value as 'bool': "
            "strconv.ParseBool: invalid syntax",
        ) from None


def _duration(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    prefix = f'{_FIELD}error converting input for field "{field}": '
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise VaultError(400, f"{prefix}cannot provide negative value '{value}'")
    try:
        return lifecycle.parse_duration(value if isinstance(value, int | float) else text(value, field))
    except BadRequest:
        raise VaultError(400, f'{prefix}time: invalid duration "{value}"') from None


def _version(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    return None if value is None else integer(value, field, prefix=_FIELD)


async def _policy_change(call: Call, key: Key, change: PolicyChange) -> tuple[Key, list[str]]:
    if change.is_empty():
        return key, []
    try:
        updated, warnings = (await call.service.set_policy(call.caller, key.id, change)).result
    except BadRequest as exc:
        if isinstance(exc, VaultError):
            raise
        raise VaultError(400, _openbao(exc.message)) from None
    return updated, [_openbao(w) for w in warnings]


async def apply_rotation_period(call: Call, key: Key, body: dict[str, Any]) -> Key:
    """A create's or an import's `auto_rotate_period`, set through the core's policy (so the
    scheduler and both dialects see it; the caller also needs `edit` on the key)."""
    period = _duration(body, "auto_rotate_period")
    if not period:
        return key
    updated, _warnings = await _policy_change(call, key, PolicyChange(rotation_period=period))
    return updated


async def create_key(call: Call) -> Outcome[KeyRead]:
    """`POST transit/keys/:name`: a new key, its `auto_rotate_period` set through the core's
    policy once it exists (checked before: a refused period creates nothing, as OpenBao). An
    existing key is answered as is, its period unchanged (OpenBao's upsert)."""
    body = await read_body(call.request, DEFAULT_LIMIT)
    project = project_of(call.request)
    name = key_name(call)
    spec = creation_spec(body, project, name)
    period = _duration(body, "auto_rotate_period")
    if period and period < lifecycle.MIN_ROTATION_PERIOD:
        raise VaultError(400, "auto rotate period must be 0 to disable or at least an hour")
    try:
        key = (await call.service.create(call.caller, spec)).result
    except DuplicateName:
        key = (await call.service.get_by_name(call.caller, project, name)).result
    else:
        key = await apply_rotation_period(call, key, body)
    return Outcome(await describe(call, key), key)


async def rotate_key(call: Call) -> Outcome[KeyRead]:
    """A new version for a key of any usage; its reply is the key (OpenBao 2.x)."""
    await read_body(call.request, DEFAULT_LIMIT)
    project, name = project_of(call.request), key_name(call)
    key = await call.service.find_by_name(call.caller, Action.ROTATE, project, name)
    if key is None:
        raise VaultError(400, "key not found")
    if key.is_disabled:
        raise VaultError(400, SOFT_DELETED)  # OpenBao: a 500 with this text
    if key.imported and not key.allow_rotation:  # OpenBao: a 500 with the core's text
        raise VaultError(400, IMPORTED_NOT_ROTATABLE.format(name=key.name))
    rotated = (await call.service.rotate(call.caller, key.id, any_usage=True)).result
    return Outcome(await describe(call, rotated), rotated)


async def configure_key(call: Call) -> Outcome[KeyRead]:
    """min_decryption_version, min_encryption_version, auto_rotate_period, deletion_allowed,
    exportable and allow_plaintext_backup (false -> true only, as Vault; refused in Kubernetes
    mode, where the KmsKey's spec.exportable is immutable and there is no backup flag)."""
    body = await read_body(call.request, DEFAULT_LIMIT)
    change = PolicyChange(
        rotation_period=_duration(body, "auto_rotate_period"),
        min_decryption_version=_version(body, "min_decryption_version"),
        min_encryption_version=_version(body, "min_encryption_version"),
    )
    deletion_allowed = optional_flag(body, "deletion_allowed")
    exportable = optional_flag(body, "exportable")
    plaintext_backup = optional_flag(body, "allow_plaintext_backup")
    project, name = project_of(call.request), key_name(call)
    key = await call.service.find_by_name(call.caller, Action.EDIT, project, name)
    if key is None:
        raise VaultError(400, f"no existing key named {name} could be found")
    key, warnings = await _policy_change(call, key, change)
    if exportable and not key.is_exportable:  # false -> true only: OpenBao ignores false
        try:
            key = (await call.service.update(call.caller, key.id, is_exportable=True)).result
        except BadRequest as exc:
            raise VaultError(400, exc.message) from None
    if plaintext_backup and not key.allow_plaintext_backup:  # false -> true only, as exportable
        try:
            key = (await call.service.update(call.caller, key.id, allow_plaintext_backup=True)).result
        except BadRequest as exc:
            raise VaultError(400, exc.message) from None
    if deletion_allowed is not None and deletion_allowed != key.deletion_allowed:
        key = (
            await call.service.update(call.caller, key.id, has_delete_protection=not deletion_allowed)
        ).result
    return Outcome(await describe(call, key, warnings), key)


async def trim_key(call: Call) -> Outcome[KeyRead]:
    """Destroy the versions below `min_available_version` (irreversible; the core's rules,
    which are OpenBao's checks in OpenBao's order with its texts)."""
    body = await read_body(call.request, DEFAULT_LIMIT)
    if body.get("min_available_version") is None:
        raise VaultError(400, "missing min_available_version")
    wanted = integer(body["min_available_version"], "min_available_version", prefix=_FIELD)
    project, name = project_of(call.request), key_name(call)
    key = await call.service.find_by_name(call.caller, Action.EDIT, project, name)
    if key is None:
        raise VaultError(400, "invalid key name")  # OpenBao's text for a missing key
    try:
        trimmed = (await call.service.trim(call.caller, key.id, wanted)).result
    except BadRequest as exc:
        if isinstance(exc, VaultError):
            raise
        raise VaultError(400, exc.message) from None
    return Outcome(await describe(call, trimmed), trimmed)


async def delete_key(call: Call) -> Outcome[None]:
    """The core's delete, allowed only with `deletion_allowed` (recovery window: module doc)."""
    project, name = project_of(call.request), key_name(call)
    key = await call.service.find_by_name(call.caller, Action.DELETE, project, name)
    if key is None:
        raise VaultError(400, f"error deleting policy {name}: could not delete key; not found")
    if not key.deletion_allowed:
        raise VaultError(400, f"error deleting policy {name}: deletion is not allowed for this key")
    deleted = (await call.service.delete(call.caller, key.id)).result
    return Outcome(None, deleted)


async def _set_soft_deleted(call: Call, disabled: bool, already: str) -> Outcome[KeyRead | None]:
    project, name = project_of(call.request), key_name(call)
    key = await call.service.find_by_name(call.caller, Action.EDIT, project, name)
    if key is None:
        return Outcome(None, None, project)  # OpenBao: 204, whether or not the key exists
    if key.is_disabled == disabled:
        return Outcome(await describe(call, key, [already]), key)
    updated = (await call.service.update(call.caller, key.id, is_disabled=disabled)).result
    return Outcome(await describe(call, updated), updated)


async def soft_delete(call: Call) -> Outcome[KeyRead | None]:
    """OpenBao's soft deletion: Infisical's disable (kept, listed, every use refused)."""
    return await _set_soft_deleted(call, True, "key was already marked as soft deleted")


async def soft_restore(call: Call) -> Outcome[KeyRead | None]:
    await read_body(call.request, DEFAULT_LIMIT)
    return await _set_soft_deleted(call, False, "key was already restored")


def no_content(call: Call, outcome: Outcome[Any]) -> web.Response:
    return web.Response(status=204)


def maybe_key_reply(call: Call, outcome: Outcome[KeyRead | None]) -> Any:
    if outcome.result is None:
        return web.Response(status=204)
    return key_reply(call, Outcome(outcome.result, outcome.key))
