"""Infisical's built-in project roles and the actions each grants on subject `cmek` (spec §4),
plus KubeKMS's own `restore` (list, restore and purge deleted keys), which only `admin` holds.

Security property: roles are closed sets; an unknown role name is a configuration error, never an
implicit grant.
"""

from __future__ import annotations

from typing import Final

ALL_ACTIONS: Final = frozenset(
    {
        "read",
        "create",
        "edit",
        "delete",
        "encrypt",
        "decrypt",
        "sign",
        "verify",
        "export-private-key",
        "generate-mac",
        "verify-mac",
        "rotate",
        "derive-shared-secret",
        # KubeKMS's own (kms_core.policy.Action.RESTORE): undoing or finalising a deletion is an
        # administrator's decision, so no other built-in role grants it.
        "restore",
    }
)

ROLES: Final[dict[str, frozenset[str]]] = {
    "admin": ALL_ACTIONS,
    "viewer": frozenset({"read"}),
    "cryptographic-operator": frozenset(
        {"encrypt", "decrypt", "sign", "verify", "generate-mac", "verify-mac"}
    ),
}

# A grant for every project, in a tokens file's `roles` mapping.
ANY_PROJECT: Final = "*"
