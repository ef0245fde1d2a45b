"""Embedded mode (`--store embedded`): a SQLite key store and token auth, both in `--data-dir`,
and the lifecycle scheduler that rotates due keys and purges deleted ones after their window.

Every API process, and every `--workers` child, runs its own scheduler: no coordination is
needed, because a scheduled rotation is one SQLite transaction guarded by the version it read
(`KeyService.rotate_if_due`) and a purge of an already purged key finds nothing. Each rotation
and purge is audited with the system actor (`kms_core.identity.SCHEDULER`), by the process that
made it, so a step is logged exactly once.

Security property: the store refuses a data dir sealed under another KEK (`SealerMismatch`)
before anything is written; the admin token, JWT secret and machine-identity secrets are files
created 0600 in the data dir (`kms_api.auth.tokens`) and never logged; the scheduler's audit
events carry ids, names and versions only, never material.
"""

from __future__ import annotations

from kms_api.auth.base import AuthBackend
from kms_api.auth.tokens import build_token_auth
from kms_api.observe.audit import record_system
from kms_api.settings import Settings
from kms_api.testclock import scheduler_clock
from kms_core.identity import SCHEDULER
from kms_core.model import DeletedKey, Key
from kms_core.schedule import LifecycleScheduler
from kms_core.sealing.base import Sealer
from kms_core.service import KeyService
from kms_core.stores.base import KeyStore
from kms_core.stores.sqlite import SqliteStore

__all__ = ["build", "lifecycle"]

ROTATE_EVENT = "rotate-cmek"  # Infisical's event type of a rotation, with trigger "scheduled"
PURGE_EVENT = "purge-cmek"  # KubeKMS's: a deleted key's material destroyed after its window


def build(settings: Settings, sealer: Sealer) -> tuple[KeyStore, AuthBackend]:
    """The SQLite store (bound to `sealer`'s KEK) and the token backend. Close both at exit."""
    # The store first: a data dir sealed under another KEK is refused before the token backend
    # writes its secret files.
    store = SqliteStore.open(settings.data_dir, sealer.kek_id)
    return store, build_token_auth(settings.data_dir, settings.tokens_file, settings.admin_token)


async def _rotated(key: Key) -> None:
    record_system(ROTATE_EVENT, SCHEDULER, key.id, key.project_id, {
        "keyId": key.id, "keyName": key.name, "version": key.version,
        "algorithm": key.algorithm.value, "trigger": "scheduled",
    })  # fmt: skip


async def _purged(deleted: DeletedKey) -> None:
    key = deleted.key
    record_system(PURGE_EVENT, SCHEDULER, key.id, key.project_id, {
        "keyId": key.id, "keyName": key.name, "version": key.version,
        "deletedAt": deleted.deleted_at.isoformat(timespec="milliseconds"),
    })  # fmt: skip


def lifecycle(settings: Settings, service: KeyService) -> LifecycleScheduler:
    """This process's scheduler (not started): every `--lifecycle-interval` seconds it rotates
    the keys whose rotation period elapsed and purges deleted keys whose window ended."""
    return LifecycleScheduler(
        service,
        interval=settings.lifecycle_interval,
        clock=scheduler_clock(settings),
        on_rotated=_rotated,
        on_purged=_purged,
    )
