"""`GET transit/backup/:name` and `POST transit/restore(/:name)`: a key's every version and policy
as OpenBao's plaintext backup (kms_api.transit.backup_format), and back.

Backup needs the export permission (`export-private-key`, as `export/`) and a key that is both
exportable and `allow_plaintext_backup`; restore needs `create` (and `delete` on the key it
replaces with `force`) and creates the key through the core's import path (validated, sealed
and stored like imported material; kms_core.transfer.restore). Kubernetes mode restores nothing
(the operator is the only writer of material) and its keys never allow plaintext backups.

Differences from OpenBao (README "Vault Transit API"): its 500s here are 400s with its text;
a restored key does not read `backup_info`/`restore_info`; a non-hmac key keeps deriving its HMAC
keys (a backup's `hmac_key` is not restored); `force` keeps the replaced key in the recovery
window instead of overwriting it.

Security property: the permission is decided before the key is looked up or the backup is
parsed; material leaves only as this reply's `backup`, never in logs or errors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from kms_api.http.json_body import DEFAULT_LIMIT
from kms_api.pipeline.call import Call
from kms_api.transit import backup_format
from kms_api.transit.envelope import VaultError, wrap
from kms_api.transit.imports import embedded_only
from kms_api.transit.inputs import project_of, read_body, text
from kms_api.transit.keys import checked_name, key_name
from kms_api.transit.lifecycle import SOFT_DELETED, optional_flag
from kms_core.errors import BadRequest, DuplicateName
from kms_core.model import Key
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["backup_key", "backup_reply", "no_content", "restore_key"]


def _vault(exc: BadRequest) -> VaultError:
    return exc if isinstance(exc, VaultError) else VaultError(400, exc.message)


async def backup_key(call: Call) -> Outcome[str]:
    """The key's backup (base64 of OpenBao's JSON)."""
    project, name = project_of(call.request), key_name(call)
    grant = await call.service.grant_by_name(call.caller, Action.EXPORT, project, name)
    if grant is None:
        raise VaultError(400, f'key "{name}" not found')  # OpenBao's text (its 500)
    if grant.key.is_disabled:
        raise VaultError(400, SOFT_DELETED)
    try:
        key, versions = (await call.service.backup(call.caller, grant)).result
    except BadRequest as exc:
        raise _vault(exc) from None
    return Outcome(backup_format.encode(key, versions, datetime.now(UTC)), key)


def backup_reply(call: Call, outcome: Outcome[str]) -> dict[str, Any]:
    return wrap({"backup": outcome.result})


async def restore_key(call: Call) -> Outcome[None]:
    """A key made of a backup: `backup`, `force`; named by the path, else by the backup (OpenBao
    2.7 ignores a `name` in the body: the empty path parameter overrides it, and so here)."""
    body = await read_body(call.request, DEFAULT_LIMIT)
    backup = text(body.get("backup"), "backup")
    force = bool(optional_flag(body, "force"))
    if not backup:
        raise VaultError(400, "'backup' must be supplied")
    name = call.request.match_info.get("name", "")
    project = project_of(call.request)
    await call.service.allow(call.caller, Action.CREATE, project, name or None)
    embedded_only(call)
    restored = backup_format.decode(backup, project, name or None)
    spec = restored.spec
    checked_name(spec.name)
    try:
        key: Key = (
            await call.service.restore_backup(
                call.caller, spec, restored.versions, restored.latest, restored.change,
                restored.min_available, force=force,
            )
        ).result  # fmt: skip
        if restored.soft_deleted:
            key = (await call.service.update(call.caller, key.id, is_disabled=True)).result
    except DuplicateName:
        raise VaultError(400, f'key "{spec.name}" already exists') from None
    except BadRequest as exc:
        raise _vault(exc) from None
    return Outcome(None, key)


def no_content(call: Call, outcome: Outcome[Any]) -> web.Response:
    return web.Response(status=204)
