"""Moving key material across the boundary: private-key export (single and bulk) and bulk import.

These are the only paths by which material leaves or enters KubeKMS in the clear. Security
property: export requires the key's `isExportable` flag (false by default, fixed at creation)
and the `export-private-key` permission, and never serves a disabled key; imported material is
validated for its declared algorithm and sealed before it is stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kms_core import algorithms, material
from kms_core.errors import BadRequest, DuplicateName, NotFound
from kms_core.identity import Identity
from kms_core.model import Algorithm, Key, KeySpec, KeyUsage
from kms_core.outcome import Outcome, attach
from kms_core.policy import Action

if TYPE_CHECKING:
    from kms_core.service import KeyService

log = logging.getLogger("kubekms.service")


@dataclass(frozen=True, slots=True)
class ExportedKey:
    """One entry of a bulk export: the key, its private material and (asymmetric) public key."""

    key: Key
    private_key: bytes
    public_key: bytes | None


@dataclass(frozen=True, slots=True)
class ImportEntry:
    """One key of a bulk import request, with its raw material as the client sent it."""

    name: str
    key_usage: KeyUsage
    algorithm: Algorithm
    material: bytes
    is_exportable: bool = False
    has_delete_protection: bool = False


# Aliases (KeyService has a method named `list`, so its annotations use these).
ExportList = list[ExportedKey]
KeyList = list[Key]
ImportErrors = list[tuple[str, str]]


async def export_private_key(svc: KeyService, identity: Identity, key_id: str) -> Outcome[bytes]:
    key = await svc.usable(identity, key_id, Action.EXPORT)
    try:
        if not key.is_exportable:
            raise BadRequest("You are not allowed to export this key")
        return Outcome((await svc.keyring(key)).export_private(), key)
    except Exception as exc:
        attach(exc, key.project_id, key)
        raise


async def bulk_export(svc: KeyService, identity: Identity, key_ids: Iterable[str]) -> Outcome[ExportList]:
    """Infisical's checks in Infisical's relative order (disabled -> same project -> exportable),
    but every one of them after the permission check, which runs for each key (its own project
    and name): a caller learns whether the keys are disabled, exportable or in one project only
    once it may export every one of them. Missing ids are still 404 (they reveal nothing the
    caller did not send). The outcome's project is the last key's (the last one asked about)."""
    ids = list(dict.fromkeys(key_ids))  # de-duplicate, keep order
    found = [k for k in [await svc.store.get(i) for i in ids] if k is not None]
    if not found:
        raise NotFound("No keys found for the provided IDs")
    if len(found) != len(ids):
        missing = sorted(set(ids) - {k.id for k in found}, key=ids.index)
        raise NotFound(f"Keys not found for IDs: {', '.join(missing)}")
    for key in found:
        await svc.allow(identity, Action.EXPORT, key.project_id, key.name)
    project = found[-1].project_id
    try:
        for key in found:
            if key.is_disabled:
                raise BadRequest(f'Key with ID "{key.id}" is disabled')
        if len({k.project_id for k in found}) > 1:
            raise BadRequest("All keys must belong to the same project")
        out: ExportList = []
        for key in found:
            if not key.is_exportable:
                raise BadRequest("You are not allowed to export this key")
            ring = await svc.keyring(key)
            public = ring.public_key() if algorithms.is_asymmetric(key.algorithm) else None
            out.append(ExportedKey(key, ring.export_private(), public))
    except Exception as exc:
        attach(exc, project)
        raise
    return Outcome(out, None, project)


async def bulk_import(
    svc: KeyService, identity: Identity, project_id: str, entries: Iterable[ImportEntry]
) -> Outcome[tuple[KeyList, ImportErrors]]:
    """Import each entry independently; failures are reported per entry (spec §2.15)."""
    await svc.allow(identity, Action.CREATE, project_id, None)
    imported: KeyList = []
    errors: ImportErrors = []
    for entry in entries:
        try:
            imported.append(await _import_one(svc, project_id, entry))
        except DuplicateName:
            errors.append((entry.name, f'A key with the name "{entry.name}" already exists in this project'))
        except BadRequest as exc:
            errors.append((entry.name, exc.message))
        except Exception:
            log.exception("bulk import entry failed", extra={"key_name": entry.name})
            errors.append((entry.name, "Failed to import key"))
    return Outcome((imported, errors), None, project_id)


async def _import_one(svc: KeyService, project_id: str, entry: ImportEntry) -> Key:
    if await svc.store.get_by_name(project_id, entry.name) is not None:
        raise DuplicateName(entry.name, project_id)
    raw = material.parse_import(entry.algorithm, entry.material)
    key_id = str(uuid.uuid4())
    sealed = material.seal(key_id, 1, entry.algorithm, raw, svc.sealer)
    spec = KeySpec(
        project_id=project_id,
        name=entry.name,
        key_usage=entry.key_usage,
        algorithm=entry.algorithm,
        is_exportable=entry.is_exportable,
        has_delete_protection=entry.has_delete_protection,
    )
    return await svc.store.create(key_id, spec, sealed)
