"""The KMS operations behind every API route, independent of HTTP and of the store.

Both modes (embedded SQLite and Kubernetes) run these same functions; views only parse input,
call one method, and serialise the result. The check order of spec §2.7 is kept here, once:
key exists (404) -> disabled (400) -> permission (403) -> key usage (400).

Security property: unsealed material exists only inside `Keyring` objects held in a bounded
in-memory cache; nothing here logs or returns material except `export_private_key`, which is
gated by `isExportable` and the `export-private-key` permission.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

# An authorisation check: (Infisical action, projectId, key name or None) -> raises
# PermissionDenied / Forbidden when the caller may not. Actions are Infisical's strings:
# read, create, edit, delete, encrypt, decrypt, sign, verify, export-private-key,
# generate-mac, verify-mac, rotate, derive-shared-secret.
Authorizer = Callable[[str, str, str | None], Awaitable[None]]
