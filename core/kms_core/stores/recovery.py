"""SQL for the embedded store's recoverable deletion: moving a key and its sealed versions
between `keys` and `deleted_keys` inside the caller's transaction.

Security property: a deleted key leaves `keys` (every API read) in the same transaction its
record and material arrive in `deleted_keys`, so it is never both usable and deleted, nor lost
in between; a purge deletes its sealed versions with it (ON DELETE CASCADE).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from kms_core.errors import NotFound

# Literal statements, no string building (the two tables share their first 21 columns).
BY_ID: Final = (
    "SELECT id, project_id, name, description, is_disabled, key_usage, algorithm, version, is_exportable,"
    " has_delete_protection, created_at, updated_at, rotation_period, min_decryption_version,"
    " min_encryption_version, min_available_version, rotated_at, derivation, allow_plaintext_backup,"
    " imported, allow_rotation, deleted_at, purge_at"
    " FROM deleted_keys WHERE id = ?"
)
BY_PROJECT: Final = (
    "SELECT id, project_id, name, description, is_disabled, key_usage, algorithm, version, is_exportable,"
    " has_delete_protection, created_at, updated_at, rotation_period, min_decryption_version,"
    " min_encryption_version, min_available_version, rotated_at, derivation, allow_plaintext_backup,"
    " imported, allow_rotation, deleted_at, purge_at"
    " FROM deleted_keys WHERE project_id = ? ORDER BY name, deleted_at"
)
EXPIRED: Final = (
    "SELECT id, project_id, name, description, is_disabled, key_usage, algorithm, version, is_exportable,"
    " has_delete_protection, created_at, updated_at, rotation_period, min_decryption_version,"
    " min_encryption_version, min_available_version, rotated_at, derivation, allow_plaintext_backup,"
    " imported, allow_rotation, deleted_at, purge_at"
    " FROM deleted_keys WHERE purge_at <= ? ORDER BY purge_at"
)
_KEEP: Final = (
    "INSERT INTO deleted_keys (id, project_id, name, description, is_disabled, key_usage, algorithm,"
    " version, is_exportable, has_delete_protection, created_at, updated_at, rotation_period,"
    " min_decryption_version, min_encryption_version, min_available_version, rotated_at, derivation,"
    " allow_plaintext_backup, imported, allow_rotation, deleted_at, purge_at)"
    " SELECT id, project_id, name, description, is_disabled, key_usage, algorithm, version, is_exportable,"
    " has_delete_protection, created_at, updated_at, rotation_period, min_decryption_version,"
    " min_encryption_version, min_available_version, rotated_at, derivation, allow_plaintext_backup,"
    " imported, allow_rotation, ?, ?"
    " FROM keys WHERE id = ?"
)
_BRING_BACK: Final = (
    "INSERT INTO keys (id, project_id, name, description, is_disabled, key_usage, algorithm, version,"
    " is_exportable, has_delete_protection, created_at, updated_at, rotation_period,"
    " min_decryption_version, min_encryption_version, min_available_version, rotated_at, derivation,"
    " allow_plaintext_backup, imported, allow_rotation)"
    # The new name goes in with the row: renamed afterwards, a taken old name would refuse it.
    " SELECT id, project_id, COALESCE(?, name), description, is_disabled, key_usage, algorithm, version,"
    " is_exportable, has_delete_protection, created_at, updated_at, rotation_period,"
    " min_decryption_version, min_encryption_version, min_available_version, rotated_at, derivation,"
    " allow_plaintext_backup, imported, allow_rotation"
    " FROM deleted_keys WHERE id = ?"
)


def keep(conn: sqlite3.Connection, key_id: str, deleted_at: int, purge_at: int) -> None:
    """Copy a key's record and sealed versions into the deleted set (the caller then deletes
    the key from `keys`)."""
    conn.execute(_KEEP, (deleted_at, purge_at, key_id))
    conn.execute(
        "INSERT INTO deleted_key_versions SELECT key_id, version, sealed, created_at"
        " FROM key_versions WHERE key_id = ?",
        (key_id,),
    )


def bring_back(conn: sqlite3.Connection, key_id: str, name: str | None) -> None:
    """Move a deleted key back into `keys` (renamed when `name` is given). Raises NotFound when
    it is not in the deleted set, sqlite3.IntegrityError when its name is taken."""
    if conn.execute("SELECT 1 FROM deleted_keys WHERE id = ?", (key_id,)).fetchone() is None:
        raise NotFound(f"Deleted key with ID {key_id} not found")
    conn.execute(_BRING_BACK, (name, key_id))
    conn.execute(
        "INSERT INTO key_versions SELECT key_id, version, sealed, created_at"
        " FROM deleted_key_versions WHERE key_id = ?",
        (key_id,),
    )
    conn.execute("DELETE FROM deleted_keys WHERE id = ?", (key_id,))
