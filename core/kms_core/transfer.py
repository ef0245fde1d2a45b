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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kms_core import algorithms, lifecycle, material
from kms_core.errors import BadRequest, DuplicateName, KmsError, NotFound
from kms_core.keyring import version_hmac_key
from kms_core.keyring_loader import KeyringLoader
from kms_core.lifecycle import PolicyChange
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
    return await loader.store.rotate(key.id, key.version, sealed, imported=True)


# ----------------------------------------------------------------------- plaintext backups


@dataclass(frozen=True, slots=True)
class BackupVersion:
    """One version of a key as a plaintext backup carries it (Transit's `backup/`, `restore/`).

    `material`: from `backup_versions`, the export format (`material.export_private`); for
    `restore`, the import format (`material.parse_import`). `hmac_key`: the version's HMAC key
    (`keyring.version_hmac_key`), filled by `backup_versions` only."""

    version: int
    created_at: datetime
    material: bytes
    hmac_key: bytes = b""

    def __repr__(self) -> str:  # never show material
        return f"BackupVersion(version={self.version})"


BackupList = list[BackupVersion]


async def backup_versions(loader: KeyringLoader, key: Key) -> BackupList:
    """Every stored version of `key` (trimmed ones no longer exist), oldest first, with its
    material and HMAC key. The caller was allowed to export `key` and checked its flags."""
    stored = sorted(
        (v for v in await loader.store.versions(key.id) if v.version <= key.version), key=lambda v: v.version
    )

    def unseal_all() -> list[BackupVersion]:
        out = []
        for v in stored:
            raw = material.unseal(key.id, v.version, key.algorithm, v.sealed, loader.sealer)
            exported = material.export_private(key.algorithm, raw)
            out.append(BackupVersion(v.version, v.created_at, exported, version_hmac_key(key.algorithm, raw)))
        return out

    try:
        return await loader.offload(unseal_all)
    except Exception as exc:
        # Wrong KEK or a tampered store: a server fault; the log gets the key id and type only.
        log.error("cannot unseal key material", extra={"key_id": key.id, "error": type(exc).__name__})
        raise KmsError("Something went wrong") from None


@dataclass(frozen=True, slots=True)
class Replaced:
    """A key a restore replaces (Transit's `force`), and when its material is purged (None:
    at once)."""

    key: Key
    purge_at: datetime | None


async def restore(
    loader: KeyringLoader, spec: KeySpec, versions: Sequence[BackupVersion], latest: int,
    change: PolicyChange, min_available: int, replaced: Replaced | None = None,
) -> Key:
    """A new key with every version of a backup, then its policy (`change`) and trim
    (`min_available`), through the same store calls as create, rotate, set_policy and trim.

    All material is validated and sealed before anything is written; a failure after the key
    was created destroys it again, so a refused restore leaves nothing behind. Versions below
    `min_available` were trimmed from the backup: they get fresh material that the trim
    destroys at once, so the version numbers (named by old ciphertexts) stay the backup's."""
    by_version = {v.version: v for v in versions}
    low = max(1, min_available)
    missing = [v for v in range(low, latest + 1) if v not in by_version]
    if latest < 1 or missing:
        raise BadRequest(f"the backup has no key material for version {missing[0] if missing else 1}")
    if replaced is None and await loader.store.get_by_name(spec.project_id, spec.name) is not None:
        raise DuplicateName(spec.name, spec.project_id)
    key_id = str(uuid.uuid4())
    sealed: dict[int, bytes] = {}
    for number in range(1, latest + 1):
        if number < low:
            blob = await loader.new_material(key_id, number, spec.algorithm)
        else:
            blob = await loader.seal_imported(key_id, number, spec.algorithm, by_version[number].material)
        if blob is None:  # a store that makes its own material (Kubernetes mode)
            raise BadRequest("this store cannot restore key material")
        sealed[number] = blob
    if replaced is not None:
        await loader.store.delete(replaced.key.id, replaced.purge_at)
        loader.forget(replaced.key.id)
    key = await loader.store.create(key_id, spec, sealed[1])
    try:
        for number in range(2, latest + 1):
            at = by_version[number].created_at if number in by_version else None
            key = await loader.store.rotate(key_id, number - 1, sealed[number], at=at, imported=spec.imported)
        if not change.is_empty():
            wanted, _warnings = lifecycle.apply(key, change)
            key = await loader.store.set_policy(key_id, key.generation, wanted)
        if min_available > 0:
            lifecycle.check_trim(key, min_available)
            key = await loader.store.trim(key_id, key.generation, min_available)
    except BaseException:
        await loader.store.delete(key_id, None)
        raise
    return key
