"""The `KeyStore` protocol both modes implement (SQLite in embedded mode, KmsKeys+Secrets in Kubernetes).

Security property: stores only ever see sealed material; they cannot unseal it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kms_core.model import Key, KeySpec, KeyVersion


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
    ) -> Key: ...

    async def delete(self, key_id: str) -> Key: ...

    async def versions(self, key_id: str) -> Sequence[KeyVersion]:
        """All versions of a key, newest first."""
        ...

    async def rotate(self, key_id: str, expected_version: int, sealed: bytes | None) -> Key: ...

    async def count_by_state(self) -> tuple[int, int] | None:
        """(enabled, disabled) keys over every project, or None: cannot count now (e.g. still loading)."""
        ...

    async def close(self) -> None: ...
