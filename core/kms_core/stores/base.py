"""The `KeyStore` protocol both modes implement (SQLite in embedded mode, KmsKeys+Secrets in Kubernetes).

Security property: stores only ever see sealed material; they cannot unseal it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from kms_core.model import DeletedKey, Key, KeySpec, KeyVersion

# `Key.generation`: the current version and the version bounds, compared before a policy write.
Generation = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """List parameters exactly as spec §2.4: order by name only, `search` is a case-insensitive
    substring in which `%` and `_` act as wildcards (SQL ILIKE, unescaped)."""

    project_id: str
    offset: int = 0
    limit: int = 100
    search: str | None = None
    descending: bool = False


class KeyStore(Protocol):
    """Async persistence of keys and their sealed versions.

    Contract:
    - `generates_material`: False when the caller mints and passes sealed material (embedded
      mode); True when the store's own machinery makes it (Kubernetes mode: the operator), in which
      case `create`/`rotate` receive `sealed=None` and return once the new material exists.
    - `create` stores the record and version 1 atomically; raises `DuplicateName` when
      (project_id, name) exists.
    - `rotate` appends version `expected_version + 1` atomically and only if the current version
      is still `expected_version` (otherwise `kms_core.errors.BadRequest`), so concurrent rotations
      never produce two materials for one version.
    - `get*` return None when absent; `update`/`delete`/`rotate` raise `NotFound` (message
      `Key with ID <id> not found`).
    - `list` returns (page, totalCount) with the spec's quirk: totalCount is 0 when the page is empty.
    - `count_by_state` returns (enabled, disabled) over every project for the keys-by-state
      gauge, or None when the store cannot count right now (the gauge keeps its last values).
    - Lifecycle (kms_core.lifecycle decides; the store only writes): `set_policy` and `trim`
      write only if the key's generation is still `expected` (otherwise BadRequest "changed
      concurrently"), `trim` destroys the sealed versions below the bound in the same write;
      `rotate` records the new version's creation time as the key's `rotated_at`.
    - Recoverable deletion: `delete(key_id, purge_at)` with a time moves the key out of every
      read (get, list, names: the name is free at once) into the deleted set until `purge`;
      with None it destroys the key at once. `restore` puts it back unchanged (optionally
      renamed; DuplicateName if the name is taken). `expired(now)` lists those due for purge.

    Every capability a caller may use is declared here: callers never probe a store with
    `getattr`, so a mode added later cannot silently lack one.
    """

    generates_material: bool

    async def org_id(self) -> str: ...

    async def ready(self) -> None:
        """Raise `Unavailable` until the store can serve reads (readiness probe; never blocks long)."""
        ...

    async def create(self, key_id: str, spec: KeySpec, sealed: bytes | None) -> Key: ...

    async def get(self, key_id: str) -> Key | None: ...

    async def get_by_name(self, project_id: str, name: str) -> Key | None: ...

    async def list(self, query: ListQuery) -> tuple[list[Key], int]: ...

    async def update(
        self,
        key_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        is_disabled: bool | None = None,
        has_delete_protection: bool | None = None,
        is_exportable: bool | None = None,
        allow_plaintext_backup: bool | None = None,
    ) -> Key:
        """Change the given fields. `is_exportable` and `allow_plaintext_backup` only ever turn
        on (True; False is ignored): a store that cannot change them (Kubernetes: the CRD makes
        exportable immutable and has no backup flag) raises BadRequest."""
        ...

    async def delete(self, key_id: str, purge_at: datetime | None = None) -> Key: ...

    async def versions(self, key_id: str) -> Sequence[KeyVersion]:
        """All versions of a key, newest first."""
        ...

    async def rotate(
        self, key_id: str, expected_version: int, sealed: bytes | None, *, at: datetime | None = None,
        imported: bool = False,
    ) -> Key:
        """Append version `expected_version + 1` unless the key moved on (BadRequest). `at` stamps
        the new version (default: now): a scheduled rotation is stamped with the time its due
        check used, so the next due time is one period after it whatever the scheduler's clock.
        `imported` records whether the new version is a client's material (`Key.imported`)."""
        ...

    async def set_policy(self, key_id: str, expected: Generation, wanted: Key) -> Key:
        """Store `wanted`'s rotation period and version bounds (not its version)."""
        ...

    async def trim(self, key_id: str, expected: Generation, min_available: int) -> Key: ...

    async def due_for_rotation(self, now: datetime) -> Sequence[Key]:
        """Enabled keys whose scheduled rotation is due at `now` (kms_core.lifecycle.is_due)."""
        ...

    async def deleted(self, project_id: str) -> Sequence[DeletedKey]: ...

    async def deleted_key(self, key_id: str) -> DeletedKey | None: ...

    async def restore(self, key_id: str, name: str | None) -> Key: ...

    async def purge(self, key_id: str) -> DeletedKey:
        """Destroy a deleted key's record and material now; NotFound when it is not deleted."""
        ...

    async def expired(self, now: datetime) -> Sequence[DeletedKey]:
        """Deleted keys whose recovery window ended at or before `now`."""
        ...

    async def count_by_state(self) -> tuple[int, int] | None:
        """(enabled, disabled) keys over every project, or None: cannot count now (e.g. still loading)."""
        ...

    async def close(self) -> None: ...
