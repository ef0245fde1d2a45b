"""Moving key material across the boundary: private-key export (single and bulk) and bulk import.

These are the only paths by which material leaves or enters KubeKMS in the clear. `KeyService`
authorises first and then calls these functions with the keys it allowed and its
`KeyringLoader`; they never import the service (one direction: service -> transfer), and all
sealing and unsealing goes through the loader, so an HSM sealer runs off the event loop.

Security property: export requires the key's `isExportable` flag (false by default, fixed at
creation) and is only reached after the `export-private-key` permission, and never serves a
disabled key; imported material is validated for its declared algorithm and sealed before it is
stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kms_core import algorithms
from kms_core.errors import BadRequest, DuplicateName, NotFound
from kms_core.keyring_loader import KeyringLoader
from kms_core.model import Algorithm, Key, KeySpec, KeyUsage
from kms_core.outcome import attach

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


async def export_private_key(loader: KeyringLoader, key: Key) -> bytes:
    """The private material of `key`, which the caller may export (already checked)."""
    try:
        if not key.is_exportable:
            raise BadRequest("You are not allowed to export this key")
        return (await loader.keyring(key)).export_private()
    except Exception as exc:
        attach(exc, key.project_id, key)
        raise


async def find_all(loader: KeyringLoader, key_ids: Iterable[str]) -> KeyList:
    """The keys of `key_ids` (de-duplicated, in order). Missing ids are 404: they reveal nothing
    the caller did not send."""
    ids = list(dict.fromkeys(key_ids))  # de-duplicate, keep order
    found = [k for k in [await loader.store.get(i) for i in ids] if k is not None]
    if not found:
        raise NotFound("No keys found for the provided IDs")
    if len(found) != len(ids):
        missing = sorted(set(ids) - {k.id for k in found}, key=ids.index)
        raise NotFound(f"Keys not found for IDs: {', '.join(missing)}")
    return found


async def export_all(loader: KeyringLoader, keys: KeyList) -> ExportList:
    """Infisical's checks in Infisical's relative order (disabled -> same project -> exportable),
    then every key's material. The caller has already been allowed to export every key, so it
    learns these states only then. Failures carry the last key's project (the last asked about)."""
    project = keys[-1].project_id
    try:
        for key in keys:
            if key.is_disabled:
                raise BadRequest(f'Key with ID "{key.id}" is disabled')
        if len({k.project_id for k in keys}) > 1:
            raise BadRequest("All keys must belong to the same project")
        out: ExportList = []
        for key in keys:
            if not key.is_exportable:
                raise BadRequest("You are not allowed to export this key")
            ring = await loader.keyring(key)
            public = ring.public_key() if algorithms.is_asymmetric(key.algorithm) else None
            out.append(ExportedKey(key, ring.export_private(), public))
    except Exception as exc:
        attach(exc, project)
        raise
    return out


async def import_all(
    loader: KeyringLoader, project_id: str, entries: Iterable[ImportEntry]
) -> tuple[KeyList, ImportErrors]:
    """Import each entry independently into `project_id` (creation already allowed); failures are
    reported per entry (spec §2.15)."""
    imported: KeyList = []
    errors: ImportErrors = []
    for entry in entries:
        try:
            imported.append(await _import_one(loader, project_id, entry))
        except DuplicateName:
            errors.append((entry.name, f'A key with the name "{entry.name}" already exists in this project'))
        except BadRequest as exc:
            errors.append((entry.name, exc.message))
        except Exception:
            log.exception("bulk import entry failed", extra={"key_name": entry.name})
            errors.append((entry.name, "Failed to import key"))
    return imported, errors


async def _import_one(loader: KeyringLoader, project_id: str, entry: ImportEntry) -> Key:
    if await loader.store.get_by_name(project_id, entry.name) is not None:
        raise DuplicateName(entry.name, project_id)
    key_id = str(uuid.uuid4())
    sealed = await loader.seal_imported(key_id, 1, entry.algorithm, entry.material)
    spec = KeySpec(
        project_id=project_id,
        name=entry.name,
        key_usage=entry.key_usage,
        algorithm=entry.algorithm,
        is_exportable=entry.is_exportable,
        has_delete_protection=entry.has_delete_protection,
    )
    return await loader.store.create(key_id, spec, sealed)


# Produces a client's raw material (e.g. unwraps Transit's BYOK ciphertext); called only once the
# caller was allowed to import, so refused callers never reach the unwrapping key.
MaterialSource = Callable[[], bytes]


async def import_one(loader: KeyringLoader, spec: KeySpec, source: MaterialSource) -> Key:
    """A new key whose version 1 is the client's material (Transit's `keys/:name/import`):
    validated by `material.parse_import` for `spec.algorithm`, sealed, stored like any key.
    DuplicateName when the name is taken (checked before the material is produced)."""
    if await loader.store.get_by_name(spec.project_id, spec.name) is not None:
        raise DuplicateName(spec.name, spec.project_id)
    key_id = str(uuid.uuid4())
    raw = await loader.offload(source)
    sealed = await loader.seal_imported(key_id, 1, spec.algorithm, raw)
    return await loader.store.create(key_id, spec, sealed)


async def import_version(loader: KeyringLoader, key: Key, source: MaterialSource) -> Key:
    """A new latest version of `key` made of the client's material (Transit's
    `keys/:name/import_version`): the same checks and sealing as `import_one`, appended like a
    rotation (refused if the key moved on concurrently)."""
    raw = await loader.offload(source)
    sealed = await loader.seal_imported(key.id, key.version + 1, key.algorithm, raw)
    return await loader.store.rotate(key.id, key.version, sealed)
