"""Authorisation as a value the service is built with: the `Policy` protocol and its actions.

`KeyService` asks its policy once per key (or project) an operation touches, with the caller's
identity, the action, the project and the key name, at the point of the check order the
service fixes (after existence, before anything else about the key). Every dialect maps its
operations onto these actions, so one policy governs a key whichever API reaches it.

Security property: a policy fails closed — it allows by returning and denies by raising
(`PermissionDenied`, `Forbidden`, `Unavailable` when it cannot decide); the service never
treats a missing decision as an allowance.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from kms_core.identity import Identity

__all__ = ["Action", "Policy"]


class Action(StrEnum):
    """What a caller asks to do to a key: Infisical's permission actions on `cmek`.

    The values are the strings auth backends decide on (role tables, SubjectAccessReview verbs
    are derived from them), so they never change."""

    READ = "read"
    CREATE = "create"
    EDIT = "edit"
    DELETE = "delete"
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    SIGN = "sign"
    VERIFY = "verify"
    EXPORT = "export-private-key"
    GENERATE_MAC = "generate-mac"
    VERIFY_MAC = "verify-mac"
    ROTATE = "rotate"
    DERIVE = "derive-shared-secret"
    # KubeKMS's own: list, restore and purge keys deleted within their recovery window.
    RESTORE = "restore"


class Policy(Protocol):
    """Decides whether `identity` may perform `action` in `project` (on `key_name`, when the
    action concerns one existing or named key)."""

    async def check(self, identity: Identity, action: Action, project: str, key_name: str | None) -> None:
        """Return when allowed; raise `PermissionDenied` (or `Forbidden`, `Unavailable`) otherwise."""
        ...
