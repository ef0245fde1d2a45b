"""Which KmsKey each material Secret belongs to, and which of those keys wait for their Secret.

Every reconciliation records the binding "Secret kmskey-<keyId> -> KmsKey namespace/name" and
whether the key came out Degraded. The Secret watch uses it to converge the right key when a
Secret changes: the binding survives labels that name another (e.g. the orphaned original) owner,
as when a KmsKey with `spec.keyId` waits for restored material; and a re-created Secret wakes only
keys that are Degraded, so a burst of new keys costs no extra reconciliations.

Security property: holds object names only, never material.
"""

from __future__ import annotations

KeyRef = tuple[str, str]  # (namespace, name) of a KmsKey


class KeyIndex:
    """Secret name <-> KmsKey, plus the set of keys whose last reconciliation was Degraded."""

    def __init__(self) -> None:
        self._owner: dict[str, KeyRef] = {}
        self._secret: dict[KeyRef, str] = {}
        self._degraded: set[KeyRef] = set()

    def bind(self, secret_name: str, key: KeyRef) -> None:
        """`key` is reconciled against `secret_name` (the newest binding of a Secret wins)."""
        previous = self._secret.get(key)
        if previous is not None and previous != secret_name and self._owner.get(previous) == key:
            del self._owner[previous]
        self._owner[secret_name] = key
        self._secret[key] = secret_name

    def mark(self, key: KeyRef, degraded: bool) -> None:
        if degraded:
            self._degraded.add(key)
        else:
            self._degraded.discard(key)

    def forget(self, key: KeyRef) -> None:
        """The KmsKey is gone (or going): its Secret no longer wakes it."""
        secret_name = self._secret.pop(key, None)
        if secret_name is not None and self._owner.get(secret_name) == key:
            del self._owner[secret_name]
        self._degraded.discard(key)

    def owner(self, secret_name: str) -> KeyRef | None:
        return self._owner.get(secret_name)

    def degraded(self, key: KeyRef) -> bool:
        return key in self._degraded

    def __len__(self) -> int:
        return len(self._owner)
