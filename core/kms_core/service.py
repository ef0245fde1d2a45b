"""The KMS operations behind every API route, independent of HTTP and of the store.

Both modes (embedded SQLite and Kubernetes) and every dialect run these same methods; a
binding only parses input, calls one method with the caller's identity and encodes the
`Outcome` it returns (the key record used and the result). The check order lives here, once:
key exists (404) -> permission (403) -> disabled (400) -> key usage (400).

Infisical checks "disabled" before the permission (spec §2.7); KubeKMS authorises first, so a
caller without rights on a project learns nothing about its keys beyond the existence of a key id
it already holds (ids are random UUIDs): an existing key is 403 whether it is enabled or
disabled, of which usage or in which project; a missing one stays 404.

Authorisation is the `Policy` the service is built with (kms_core.policy), asked with the
identity each call carries. Failures carry what was established before them (the project once
asked about, the key once usable: kms_core.outcome.attach), so denials are audited with their
project without the policy writing into the request.

Security property: authorise before revealing — no state of a key (disabled, usage, project,
export flag, delete protection) reaches a caller before the policy allowed the action on it.
Unsealed material exists only inside `Keyring` objects held in a bounded in-memory cache;
nothing here logs or returns material except `export_private_key` and `bulk_export`, which
require `isExportable` and the `export-private-key` permission.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Final

from kms_core import algorithms, derivation, lifecycle, transfer
from kms_core.batch import EncryptItem
from kms_core.errors import BadRequest, DecryptionFailed, DuplicateName, NotFound
from kms_core.grant import Grant, KeyRef
from kms_core.identity import Identity
from kms_core.keyring import Keyring
from kms_core.keyring_loader import KeyringLoader
from kms_core.lifecycle import PolicyChange, VersionState
from kms_core.metrics import CRYPTO_FAILURES, KEY_ROTATIONS
from kms_core.model import DeletedKey, Key, KeySpec, KeyUsage, SigningAlgorithm
from kms_core.outcome import Outcome, attach
from kms_core.policy import Action, Policy
from kms_core.sealing.base import Sealer
from kms_core.signing_options import SigningOptions
from kms_core.stores.base import KeyStore, ListQuery
from kms_core.transfer import (
    BackupList,
    BackupVersion,
    ExportedKey,
    ExportList,
    ImportEntry,
    ImportErrors,
    KeyList,
)

__all__ = ["BackupVersion", "ExportedKey", "ImportEntry", "KeyService", "VersionInfo"]

# One version as the versions routes show it: number, creation time, state (never material).
VersionInfo = tuple[int, datetime, VersionState]

_ENCRYPT_DECRYPT: Final = KeyUsage.ENCRYPT_DECRYPT
_SIGN_VERIFY: Final = KeyUsage.SIGN_VERIFY
_MAC: Final = KeyUsage.GENERATE_VERIFY_MAC

EXPORTABLE_IS_ONE_WAY: Final = "A key that is exportable cannot be made non-exportable"
# OpenBao's text, verbatim (clients match it), for either dialect's rotate of such a key.
IMPORTED_NOT_ROTATABLE: Final = "imported key {name} does not allow rotation within Vault"
# OpenBao's texts for a backup of a key without either flag (in its order).
BACKUP_NOT_EXPORTABLE: Final = "exporting is disallowed on the policy"
BACKUP_NOT_ALLOWED: Final = "plaintext backup is disallowed on the policy"
_ROTATION_REFUSED = (
    "Only encrypt-decrypt keys support rotation. To rotate a sign-verify, MAC, or key-agreement "
    "key, create a new key and update your applications to use it."
)
# Infisical's text for an encrypt-decrypt key that is not symmetric (RSA_4096 with OAEP); its
# second sentence is Infisical's, though it names other key kinds than the one refused.
_RSA_ROTATION_REFUSED = (
    "Only symmetric encrypt-decrypt keys support rotation. To rotate a sign-verify or MAC key, "
    "create a new key and update your applications to use it."
)


def _serves(key: Key, usage: KeyUsage, dual_use: bool) -> bool:
    """Whether `key` may serve `usage`: its own, or with `dual_use` (the Transit dialect) any
    usage of a dual-use algorithm (RSA: OpenBao's rsa-* keys both encrypt and sign)."""
    if key.key_usage == usage:
        return True
    spec = algorithms.spec_of(key.algorithm)
    return dual_use and spec.dual_use and usage in spec.usages


def _wrong_usage(key: Key, usage: KeyUsage) -> BadRequest:
    return BadRequest(f"Unsupported key type, expected {usage} but got {key.key_usage}")


class KeyService:
    """Every KMS operation, for one store, one sealer and one authorisation policy.

    Slow private-key operations (RSA, key generation, HSM unsealing) run in `executor` so the
    event loop never stalls; fast ones (AES, HMAC, EC verify) run inline. Loading, caching and
    minting material is the `KeyringLoader`'s job (kms_core.keyring_loader); this class holds the
    checks and the order they run in.
    """

    def __init__(
        self,
        store: KeyStore,
        sealer: Sealer,
        policy: Policy,
        *,
        cache_size: int = 4096,
        executor: Executor | None = None,
        deletion_window: int = 0,
    ) -> None:
        """`deletion_window`: seconds a deleted key stays restorable (0 = destroyed at once)."""
        self.store = store
        self.sealer = sealer
        self.policy = policy
        self.deletion_window = deletion_window
        self._loader = KeyringLoader(store, sealer, cache_size=cache_size, executor=executor)

    async def _find(self, key_id: str, quoted: bool = True) -> Key:
        key = await self.store.get(key_id)
        if key is None:
            raise NotFound(
                f'Key with ID "{key_id}" not found' if quoted else f"Key with ID {key_id} not found"
            )
        return key

    async def allow(self, identity: Identity, action: Action, project: str, key_name: str | None) -> None:
        """Ask the policy; a refusal carries the project it was asked about (for the audit)."""
        try:
            await self.policy.check(identity, action, project, key_name)
        except Exception as exc:
            attach(exc, project)
            raise

    async def usable(self, identity: Identity, key_id: KeyRef, action: Action, *, quoted: bool = True) -> Key:
        """exists -> permitted -> not disabled; usage is checked by the caller. Deliberately not
        spec §2.7's order (disabled before permission): see the module docstring.

        `key_id` may be a `Grant` (`grant_by_name`) for this identity and action: the key it
        carries was found and authorised already, so neither is done twice. Any other grant is
        checked from scratch by its key's id.

        `quoted` picks the 404 text: Infisical quotes the id (`Key with ID "<id>" not found`)
        everywhere except update, delete and rotate.
        """
        if isinstance(key_id, Grant):
            if key_id.identity is identity and key_id.action is action:
                key = key_id.key
            else:
                key = await self._find(key_id.key.id, quoted)
                await self.allow(identity, action, key.project_id, key.name)
        else:
            key = await self._find(key_id, quoted)
            await self.allow(identity, action, key.project_id, key.name)
        if key.is_disabled:
            refused = BadRequest("Key is disabled")
            attach(refused, key.project_id)
            raise refused
        return key

    async def keyring(self, key: Key) -> Keyring:
        """The ready-to-use keyring of `key` at its current version (cached; unsealed on miss)."""
        return await self._loader.keyring(key)

    # ----------------------------------------------------------------- key records
    # A failure after the permission check carries the project (not the key: the record routes
    # label metrics only with what they returned).

    async def create(self, identity: Identity, spec: KeySpec) -> Outcome[Key]:
        await self.allow(identity, Action.CREATE, spec.project_id, None)
        try:
            if not algorithms.is_compatible(spec.key_usage, spec.algorithm):
                raise BadRequest(algorithms.incompatibility_message(spec.key_usage))
            derivation.check_derivable(spec.algorithm, spec.derived, spec.convergent_encryption)
            # The store's unique constraint is the real guard (a concurrent create still gets
            # DuplicateName); this early check only avoids minting material, up to a second of
            # RSA key generation, for a name that is already taken.
            if await self.store.get_by_name(spec.project_id, spec.name) is not None:
                raise DuplicateName(spec.name, spec.project_id)
            key_id = str(uuid.uuid4())
            sealed = await self._loader.new_material(key_id, 1, spec.algorithm)
            created = await self.store.create(key_id, spec, sealed)
        except Exception as exc:
            attach(exc, spec.project_id)
            raise
        return Outcome(created, created)

    async def get(self, identity: Identity, key_id: str) -> Outcome[Key]:
        key = await self._find(key_id)
        await self.allow(identity, Action.READ, key.project_id, key.name)
        return Outcome(key, key)

    async def get_by_name(self, identity: Identity, project_id: str, name: str) -> Outcome[Key]:
        await self.allow(identity, Action.READ, project_id, name)
        key = await self.store.get_by_name(project_id, name)
        if key is None:
            missing = NotFound(f'Key with name "{name}" not found for project with ID "{project_id}"')
            attach(missing, project_id)
            raise missing
        return Outcome(key, key)

    async def list(self, identity: Identity, query: ListQuery) -> Outcome[tuple[KeyList, int]]:
        await self.allow(identity, Action.READ, query.project_id, None)
        try:
            return Outcome(await self.store.list(query), None, query.project_id)
        except Exception as exc:
            attach(exc, query.project_id)
            raise

    async def update(
        self, identity: Identity, key_id: str, *, name: str | None = None, description: str | None = None,
        is_disabled: bool | None = None, has_delete_protection: bool | None = None,
        is_exportable: bool | None = None, allow_plaintext_backup: bool | None = None,
    ) -> Outcome[Key]:
        """Change a key's record. `is_exportable` may only turn on (Vault's `exportable` config:
        false -> true); turning it off is refused: the material may have left already.
        `allow_plaintext_backup` too only turns on (False is ignored, as OpenBao does)."""
        key = await self._find(key_id, quoted=False)
        await self.allow(identity, Action.EDIT, key.project_id, key.name)
        try:
            if is_exportable is False and key.is_exportable:
                raise BadRequest(EXPORTABLE_IS_ONE_WAY)
            updated = await self.store.update(
                key_id, name=name, description=description, is_disabled=is_disabled,
                has_delete_protection=has_delete_protection, is_exportable=is_exportable,
                allow_plaintext_backup=allow_plaintext_backup or None,
            )
        except Exception as exc:
            attach(exc, key.project_id)
            raise
        return Outcome(updated, updated)

    async def delete(self, identity: Identity, key_id: str) -> Outcome[Key]:
        key = await self._find(key_id, quoted=False)
        await self.allow(identity, Action.DELETE, key.project_id, key.name)
        try:
            if key.has_delete_protection:
                raise BadRequest("Key is protected from deletion. Disable delete protection to delete it.")
            window = self.deletion_window
            purge_at = datetime.now(UTC) + timedelta(seconds=window) if window > 0 else None
            deleted = await self.store.delete(key_id, purge_at)
        except Exception as exc:
            attach(exc, key.project_id)
            raise
        self._loader.forget(key_id)
        return Outcome(deleted, deleted)

    async def rotate(self, identity: Identity, key_id: str, *, any_usage: bool = False) -> Outcome[Key]:
        """A new current version. The Infisical dialect keeps Infisical's rule (`any_usage`
        False: symmetric encrypt-decrypt keys only); the core rotates every usage. The record
        returned is Infisical's: only `version` changes (`updatedAt` stays)."""
        key = await self.usable(identity, key_id, Action.ROTATE, quoted=False)
        try:
            if not any_usage and key.key_usage != _ENCRYPT_DECRYPT:
                raise BadRequest(_ROTATION_REFUSED)
            if not any_usage and not algorithms.is_symmetric(key.algorithm):
                raise BadRequest(_RSA_ROTATION_REFUSED)
            if key.imported and not key.allow_rotation:
                # The client keeps its own copy of imported material and may rely on it being
                # the latest; only a key imported with allow_rotation moves on to generated
                # material (which clears `imported`, as OpenBao's rotate does).
                raise BadRequest(IMPORTED_NOT_ROTATABLE.format(name=key.name))
            rotated = await self._new_version(key)
        except Exception as exc:
            attach(exc, key.project_id)
            raise
        KEY_ROTATIONS.labels(trigger="manual").inc()
        return Outcome(rotated, rotated)

    async def _new_version(self, key: Key, at: datetime | None = None) -> Key:
        sealed = await self._loader.new_material(key.id, key.version + 1, key.algorithm)
        return await self.store.rotate(key.id, key.version, sealed, at=at)

    async def rotate_if_due(self, key_id: str, now: datetime) -> Key | None:
        """The scheduler's rotation (no caller identity: the key's own policy asks for it).

        Exactly once per due time, however many processes try: the key is re-read, rotated only
        if still due, and the store appends the version only if the current version is still
        the one read (kms_core.stores.base.KeyStore.rotate), so of two racing processes one
        wins and the other's fresh material is discarded unsealed-and-unstored. Returns the
        rotated record, or None when nothing was due or another process won."""
        key = await self.store.get(key_id)
        if key is None or not lifecycle.is_due(key, now) or (key.imported and not key.allow_rotation):
            return None
        try:
            # Stamped `now`: the next due time is one period after the due time this pass used,
            # whatever the scheduler's clock (an injected one in tests) says about wall time.
            rotated = await self._new_version(key, now)
        except BadRequest:
            return None  # rotated concurrently: the other rotation counts, this one does not
        KEY_ROTATIONS.labels(trigger="scheduled").inc()
        return rotated

    # ----------------------------------------------------------------- lifecycle policy

    async def set_policy(
        self, identity: Identity, key_id: str, change: PolicyChange, *, trim_to: int | None = None
    ) -> Outcome[tuple[Key, Sequence[str]]]:
        """Change the rotation period and version bounds (kms_core.lifecycle rules); returns the
        updated record and Vault's warnings.

        `trim_to` also trims below that version under the *new* bounds, checked before anything
        is stored: one request that raises the bounds and trims is refused whole or applied
        whole (short of a concurrent change between the two store writes, which the
        generation guard turns into a refusal of the trim)."""
        key = await self._find(key_id, quoted=False)
        await self.allow(identity, Action.EDIT, key.project_id, key.name)
        try:
            wanted, warnings = lifecycle.apply(key, change)
            if trim_to is not None:
                lifecycle.check_trim(wanted, trim_to)
            updated = key if wanted == key else await self.store.set_policy(key.id, key.generation, wanted)
            if trim_to is not None and trim_to != updated.min_available_version:
                updated = await self.store.trim(key.id, updated.generation, trim_to)
        except Exception as exc:
            attach(exc, key.project_id)
            raise
        if updated.generation != key.generation:
            self._loader.forget(key.id)  # retired versions' material leaves memory now
        return Outcome((updated, warnings), updated)

    async def trim(self, identity: Identity, key_id: str, min_available: int) -> Outcome[Key]:
        """Destroy the sealed material of every version below `min_available` (irreversible;
        refused unless no bound still lets anyone use those versions)."""
        key = await self._find(key_id, quoted=False)
        await self.allow(identity, Action.EDIT, key.project_id, key.name)
        try:
            lifecycle.check_trim(key, min_available)
            trimmed = await self.store.trim(key.id, key.generation, min_available)
        except Exception as exc:
            attach(exc, key.project_id)
            raise
        self._loader.forget(key.id)
        return Outcome(trimmed, trimmed)

    async def versions(self, identity: Identity, key_id: str) -> Outcome[tuple[Key, Sequence[VersionInfo]]]:
        """Every stored version of a key, newest first, with its creation time and state."""
        key = await self._find(key_id)
        await self.allow(identity, Action.READ, key.project_id, key.name)
        stored = [v for v in await self.store.versions(key.id) if v.version <= key.version]
        infos = [(v.version, v.created_at, lifecycle.version_state(key, v.version)) for v in stored]
        return Outcome((key, infos), key)

    # ----------------------------------------------------------------- recoverable deletion

    async def deleted(self, identity: Identity, project_id: str) -> Outcome[Sequence[DeletedKey]]:
        """The project's keys deleted within their recovery window."""
        await self.allow(identity, Action.RESTORE, project_id, None)
        try:
            now = datetime.now(UTC)
            # A key past its window is as good as purged (the scheduler's next pass destroys it).
            kept = [d for d in await self.store.deleted(project_id) if d.purge_at > now]
            return Outcome(kept, None, project_id)
        except Exception as exc:
            attach(exc, project_id)
            raise

    async def restore(self, identity: Identity, key_id: str, name: str | None = None) -> Outcome[Key]:
        """Bring a deleted key back (same id, material and versions) before its purge; `name`
        renames it when its old name was taken meanwhile."""
        found = await self.store.deleted_key(key_id)
        if found is None or found.purge_at <= datetime.now(UTC):
            # Past its window a key is gone, whether or not the scheduler has purged it yet:
            # the window is a promise to the owner that the material ends then.
            raise NotFound(f"Deleted key with ID {key_id} not found")
        await self.allow(identity, Action.RESTORE, found.key.project_id, found.key.name)
        try:
            restored = await self.store.restore(key_id, name)
        except Exception as exc:
            attach(exc, found.key.project_id)
            raise
        return Outcome(restored, restored)

    async def purge(self, identity: Identity, key_id: str) -> Outcome[DeletedKey]:
        """Destroy a deleted key's material now, before its window ends (irreversible)."""
        found = await self.store.deleted_key(key_id)
        if found is None:
            raise NotFound(f"Deleted key with ID {key_id} not found")
        await self.allow(identity, Action.RESTORE, found.key.project_id, found.key.name)
        purged = await self.store.purge(key_id)
        return Outcome(purged, purged.key)

    # ----------------------------------------------------------------- cryptography
    # A failure after `usable` carries the key: it passed every check but usage, and the metrics
    # of these routes are labelled with its algorithm.

    async def encrypt(
        self, identity: Identity, key_id: KeyRef, plaintext: bytes, version: int | None = None, *,
        aad: bytes | None = None, context: bytes | None = None, dual_use: bool = False,
    ) -> Outcome[bytes]:
        """Encrypt under the latest version, or `version` within the key's bounds; `context`
        selects a derived key's encryption key (kms_core.derivation); `aad` is
        authenticated associated data (AEAD keys); `dual_use` lets an RSA key of either usage
        encrypt (the Transit dialect)."""
        key = await self.usable(identity, key_id, Action.ENCRYPT)
        try:
            if not _serves(key, _ENCRYPT_DECRYPT, dual_use):
                raise _wrong_usage(key, _ENCRYPT_DECRYPT)
            if version is not None:
                version = lifecycle.encryption_version(key, version)
            ring = await self._loader.keyring(key)
            # public-key or AES work: fast enough inline
            return Outcome(ring.encrypt(plaintext, version, aad, context), key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def encrypt_many(
        self, identity: Identity, key_id: KeyRef, items: Sequence[EncryptItem], *, dual_use: bool = False,
    ) -> Outcome[Sequence[bytes | BadRequest]]:
        """`encrypt` for every item under one key (Transit's `batch_input`): the key is looked
        up, authorised and its keyring loaded once per batch, not per item. Each entry is the
        item's ciphertext or its own failure (a version out of bounds, associated data for RSA,
        a derived key without a context); a failure of the key itself fails the call."""
        key = await self.usable(identity, key_id, Action.ENCRYPT)
        try:
            if not _serves(key, _ENCRYPT_DECRYPT, dual_use):
                raise _wrong_usage(key, _ENCRYPT_DECRYPT)
            ring = await self._loader.keyring(key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise
        results: list[bytes | BadRequest] = []
        for item in items:
            try:
                version = None if item.version is None else lifecycle.encryption_version(key, item.version)
                results.append(ring.encrypt(item.plaintext, version, item.aad, item.context))
            except BadRequest as exc:  # this item's own refusal; anything else fails the batch
                results.append(exc)
        return Outcome(results, key)

    async def decrypt(
        self, identity: Identity, key_id: KeyRef, ciphertext: bytes, *,
        aad: bytes | None = None, context: bytes | None = None, dual_use: bool = False,
    ) -> Outcome[bytes]:
        key = await self.usable(identity, key_id, Action.DECRYPT)
        try:
            if not _serves(key, _ENCRYPT_DECRYPT, dual_use):
                raise _wrong_usage(key, _ENCRYPT_DECRYPT)
            ring = await self._loader.keyring(key)
            try:
                return Outcome(await self._loader.run(ring, ring.decrypt, ciphertext, aad, context), key)
            except DecryptionFailed:
                CRYPTO_FAILURES.labels(reason="decrypt").inc()
                raise
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def public_key(self, identity: Identity, key_id: str) -> Outcome[bytes]:
        key = await self.usable(identity, key_id, Action.READ)
        try:
            if not algorithms.is_asymmetric(key.algorithm):
                raise BadRequest(
                    "Unsupported key type, expected sign-verify or key-agreement type but got "
                    f"{key.key_usage}"
                )
            if key.derived:
                # Its own key pair verifies nothing: each context has its public key (Transit's
                # key read with `context`).
                raise BadRequest(
                    f"Key with ID '{key.id}' is a derived key: its public key depends on the "
                    "per-request context of the Vault Transit API"
                )
            return Outcome((await self._loader.keyring(key)).public_key(), key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def signing_algorithms(
        self, identity: Identity, key_id: str
    ) -> Outcome[tuple[SigningAlgorithm, ...]]:
        key = await self.usable(identity, key_id, Action.READ)
        if key.key_usage != _SIGN_VERIFY:
            refused = BadRequest(f"Key with ID '{key.id}' is not intended for signing")
            attach(refused, key.project_id, key)
            raise refused
        return Outcome(algorithms.signing_algorithms(key.algorithm), key)

    async def sign(
        self, identity: Identity, key_id: KeyRef, algorithm: SigningAlgorithm | SigningOptions, data: bytes,
        is_digest: bool, version: int | None = None, *, dual_use: bool = False, context: bytes | None = None,
    ) -> Outcome[bytes]:
        """Sign with Infisical's `algorithm` or dialect-neutral `SigningOptions`
        (kms_core.signing_options; `is_digest` then is ignored: the options say `prehashed`).
        `context` selects a derived key's signing key (kms_core.derivation): a derived key
        without one is refused with `derivation.MISSING_CONTEXT` (the Infisical dialect has none)."""
        key = await self.usable(identity, key_id, Action.SIGN)
        try:
            if not _serves(key, _SIGN_VERIFY, dual_use):
                raise _wrong_usage(key, _SIGN_VERIFY)
            if version is not None:
                version = lifecycle.encryption_version(key, version)
            ring = await self._loader.keyring(key)
            signed = await self._loader.run(ring, ring.sign, algorithm, data, is_digest, version, context)
            return Outcome(signed, key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def verify(
        self, identity: Identity, key_id: KeyRef, algorithm: SigningAlgorithm | SigningOptions, data: bytes,
        signature: bytes, is_digest: bool, version: int | None = None, *, dual_use: bool = False,
        context: bytes | None = None,
    ) -> Outcome[bool]:
        """Verify under `version`, or under every allowed version (signatures carry none in
        Infisical's format, and a rotation must not invalidate what the old version signed);
        `context`: as `sign`."""
        key = await self.usable(identity, key_id, Action.VERIFY)
        try:
            if not _serves(key, _SIGN_VERIFY, dual_use):
                raise _wrong_usage(key, _SIGN_VERIFY)
            ring = await self._loader.keyring(key)
            return Outcome(ring.verify(algorithm, data, signature, is_digest, version, context), key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def generate_mac(
        self, identity: Identity, key_id: KeyRef, data: bytes, version: int | None = None, *,
        hash_name: str | None = None,
    ) -> Outcome[bytes]:
        """The HMAC of `data`. With `hash_name` (hashlib's; the Transit dialect) any key MACs,
        with that hash, under its version's HMAC key (`Keyring.hmac_key`); without one only MAC
        keys do, with their own hash (Infisical's rule)."""
        key = await self.usable(identity, key_id, Action.GENERATE_MAC)
        try:
            if key.key_usage != _MAC and hash_name is None:
                raise BadRequest(f"Key with ID '{key.id}' is not intended for MAC generation")
            if version is not None:
                version = lifecycle.encryption_version(key, version)
            ring = await self._loader.keyring(key)
            return Outcome(ring.generate_mac(data, version, hash_name), key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def verify_mac(
        self, identity: Identity, key_id: KeyRef, data: bytes, mac: bytes, version: int | None = None, *,
        hash_name: str | None = None,
    ) -> Outcome[bool]:
        """Verify an HMAC; `hash_name` as for `generate_mac`."""
        key = await self.usable(identity, key_id, Action.VERIFY_MAC)
        try:
            if key.key_usage != _MAC and hash_name is None:
                raise BadRequest(f"Key with ID '{key.id}' is not intended for MAC verification")
            ring = await self._loader.keyring(key)
            return Outcome(ring.verify_mac(data, mac, version, hash_name), key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    async def derive_shared_secret(
        self, identity: Identity, key_id: str, peer_public_key: bytes
    ) -> Outcome[bytes]:
        key = await self.usable(identity, key_id, Action.DERIVE)
        try:
            if key.key_usage != KeyUsage.KEY_AGREEMENT:
                raise BadRequest(f"Key with ID '{key.id}' is not intended for shared secret derivation")
            ring = await self._loader.keyring(key)
            return Outcome(await self._loader.run(ring, ring.derive_shared_secret, peer_public_key), key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise

    # ----------------------------------------------------------------- export and import
    # Authorisation here; moving the material is kms_core.transfer's, given the loader.

    async def export_private_key(self, identity: Identity, key_id: str) -> Outcome[bytes]:
        key = await self.usable(identity, key_id, Action.EXPORT)
        return Outcome(await transfer.export_private_key(self._loader, key), key)

    async def bulk_export(self, identity: Identity, key_ids: Iterable[str]) -> Outcome[ExportList]:
        """The permission check runs for each key (its own project and name) before any other:
        a caller learns whether the keys are disabled, exportable or in one project only once it
        may export every one of them. The outcome's project is the last key's."""
        found = await transfer.find_all(self._loader, key_ids)
        for key in found:
            await self.allow(identity, Action.EXPORT, key.project_id, key.name)
        return Outcome(await transfer.export_all(self._loader, found), None, found[-1].project_id)

    async def bulk_import(
        self, identity: Identity, project_id: str, entries: Iterable[ImportEntry]
    ) -> Outcome[tuple[KeyList, ImportErrors]]:
        await self.allow(identity, Action.CREATE, project_id, None)
        return Outcome(await transfer.import_all(self._loader, project_id, entries), None, project_id)

    async def import_key(
        self, identity: Identity, spec: KeySpec, source: transfer.MaterialSource
    ) -> Outcome[Key]:
        """Create `spec` with the client's material as version 1 (Transit BYOK import).

        The permission (`create`) is asked before `source` runs: a refused caller never gets the
        material unwrapped. Stores that make their own material (Kubernetes mode) refuse."""
        await self.allow(identity, Action.CREATE, spec.project_id, None)
        try:
            if not algorithms.is_compatible(spec.key_usage, spec.algorithm):
                raise BadRequest(algorithms.incompatibility_message(spec.key_usage))
            derivation.check_derivable(spec.algorithm, spec.derived, spec.convergent_encryption)
            created = await transfer.import_one(self._loader, spec, source)
        except Exception as exc:
            attach(exc, spec.project_id)
            raise
        return Outcome(created, created)

    async def import_version(
        self, identity: Identity, key_id: KeyRef, source: transfer.MaterialSource
    ) -> Outcome[Key]:
        """A new latest version made of the client's material (permission: `rotate`, asked
        before `source` runs)."""
        key = await self.usable(identity, key_id, Action.ROTATE, quoted=False)
        try:
            imported = await transfer.import_version(self._loader, key, source)
        except Exception as exc:
            attach(exc, key.project_id)
            raise
        KEY_ROTATIONS.labels(trigger="manual").inc()
        return Outcome(imported, imported)

    async def backup(self, identity: Identity, key_id: KeyRef) -> Outcome[tuple[Key, BackupList]]:
        """Every version's material of a key created (or configured) both exportable and with
        `allow_plaintext_backup`, for Transit's `backup/`; permission: `export-private-key`,
        asked before anything about the key is revealed."""
        key = await self.usable(identity, key_id, Action.EXPORT)
        try:
            if not key.is_exportable:
                raise BadRequest(BACKUP_NOT_EXPORTABLE)
            if not key.allow_plaintext_backup:
                raise BadRequest(BACKUP_NOT_ALLOWED)
            versions = await transfer.backup_versions(self._loader, key)
        except Exception as exc:
            attach(exc, key.project_id, key)
            raise
        return Outcome((key, versions), key)

    async def restore_backup(
        self, identity: Identity, spec: KeySpec, versions: Sequence[BackupVersion], latest: int,
        change: PolicyChange, min_available: int, *, force: bool = False,
    ) -> Outcome[Key]:
        """Create `spec` with a backup's versions and policy (Transit's `restore/`).

        Permission: `create`, asked before any material is looked at. An existing key of that
        name is DuplicateName, unless `force`: then the caller also needs `delete` on it, and it
        is deleted as by `delete` (within the recovery window when one is configured, so it can
        still be brought back) once the backup's material was validated."""
        await self.allow(identity, Action.CREATE, spec.project_id, None)
        try:
            if not algorithms.is_compatible(spec.key_usage, spec.algorithm):
                raise BadRequest(algorithms.incompatibility_message(spec.key_usage))
            derivation.check_derivable(spec.algorithm, spec.derived, spec.convergent_encryption)
            replaced = None
            existing = await self.store.get_by_name(spec.project_id, spec.name)
            if existing is not None:
                if not force:
                    raise DuplicateName(spec.name, spec.project_id)
                await self.allow(identity, Action.DELETE, existing.project_id, existing.name)
                window = self.deletion_window
                purge_at = datetime.now(UTC) + timedelta(seconds=window) if window > 0 else None
                replaced = transfer.Replaced(existing, purge_at)
            created = await transfer.restore(
                self._loader, spec, versions, latest, change, min_available, replaced
            )
        except Exception as exc:
            attach(exc, spec.project_id)
            raise
        return Outcome(created, created)

    # ----------------------------------------------------------------- lifecycle

    async def ready(self) -> None:
        """Raise Unavailable unless the store can serve and the sealer can seal and unseal."""
        await self._loader.ready()

    async def close(self) -> None:
        self._loader.close()
        await self.store.close()

    # --- by name (Transit)

    async def find_by_name(
        self, identity: Identity, action: Action, project_id: str, name: str
    ) -> Key | None:
        """The key `name` of `project_id`, or None, once `identity` may perform `action` there
        (`grant_by_name`'s key)."""
        grant = await self.grant_by_name(identity, action, project_id, name)
        return grant.key if grant is not None else None

    async def grant_by_name(
        self, identity: Identity, action: Action, project_id: str, name: str
    ) -> Grant | None:
        """The key `name` of `project_id` as a `Grant` the operations accept in place of the key
        id, once `identity` may perform `action` there, so a dialect addressing keys by name
        costs one lookup and one policy decision per request, as a call by id does (the batch
        items of one request share them).

        Dialects that address keys by name (Vault Transit) resolve them with the operation's own
        action. The permission is asked before the key is looked up, as Vault checks its ACLs
        before a backend runs: a caller without the action learns nothing about which names
        exist."""
        await self.allow(identity, action, project_id, name)
        try:
            key = await self.store.get_by_name(project_id, name)
        except Exception as exc:
            attach(exc, project_id)
            raise
        return Grant(key, identity, action) if key is not None else None
