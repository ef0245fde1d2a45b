"""The KMS operations behind every API route, independent of HTTP and of the store.

Both modes (embedded SQLite and Kubernetes) run these same functions; views only parse input,
call one method and serialise the result. The check order lives here, once:
key exists (404) -> permission (403) -> disabled (400) -> key usage (400).

Infisical checks "disabled" before the permission (spec §2.7); KubeKMS authorises first, so a
caller without rights on a project learns nothing about its keys beyond the existence of a key id
it already holds (ids are random UUIDs): an existing key is 403 whether it is enabled or
disabled, of which usage or in which project; a missing one stays 404.

Security property: authorise before revealing — no state of a key (disabled, usage, project,
export flag, delete protection) reaches a caller before the authorizer allowed the action on it.
Unsealed material exists only inside `Keyring` objects held in a bounded in-memory cache;
nothing here logs or returns material except `export_private_key` and `bulk_export`, which
require `isExportable` and the `export-private-key` permission.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor

from kms_core import algorithms, transfer
from kms_core.errors import BadRequest, DecryptionFailed, DuplicateName, NotFound
from kms_core.keyring import Keyring
from kms_core.keyrings import KeyringLoader
from kms_core.metrics import CRYPTO_FAILURES
from kms_core.model import Key, KeySpec, KeyUsage, SigningAlgorithm
from kms_core.sealing.base import Sealer
from kms_core.stores.base import KeyStore, ListQuery
from kms_core.transfer import ExportedKey, ExportList, ImportEntry, ImportErrors, KeyList

__all__ = ["Authorizer", "ExportedKey", "ImportEntry", "KeyObserver", "KeyService"]

# An authorisation check: (Infisical action, projectId, key name or None) -> raises
# PermissionDenied / Forbidden when the caller may not. Actions are Infisical's strings:
# read, create, edit, delete, encrypt, decrypt, sign, verify, export-private-key,
# generate-mac, verify-mac, rotate, derive-shared-secret.
Authorizer = Callable[[str, str, str | None], Awaitable[None]]
# Told the key record an operation used, once it passed the checks (e.g. to label metrics with
# its algorithm without a second lookup).
KeyObserver = Callable[[Key], None]

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


class KeyService:
    """Every KMS operation, for one store and one sealer.

    Slow private-key operations (RSA, key generation, HSM unsealing) run in `executor` so the
    event loop never stalls; fast ones (AES, HMAC, EC verify) run inline. Loading, caching and
    minting material is the `KeyringLoader`'s job (kms_core.keyrings); this class holds the
    checks and the order they run in.
    """

    def __init__(
        self, store: KeyStore, sealer: Sealer, *, cache_size: int = 4096, executor: Executor | None = None
    ) -> None:
        self.store = store
        self.sealer = sealer
        self._loader = KeyringLoader(store, sealer, cache_size=cache_size, executor=executor)

    async def _find(self, key_id: str, quoted: bool = True) -> Key:
        key = await self.store.get(key_id)
        if key is None:
            raise NotFound(
                f'Key with ID "{key_id}" not found' if quoted else f"Key with ID {key_id} not found"
            )
        return key

    async def usable(
        self, key_id: str, action: str, authz: Authorizer, observe: KeyObserver | None = None,
        *, quoted: bool = True,
    ) -> Key:
        """exists -> permitted -> not disabled; usage is checked by the caller. Deliberately not
        spec §2.7's order (disabled before permission): see the module docstring.

        `quoted` picks the 404 text: Infisical quotes the id (`Key with ID "<id>" not found`)
        everywhere except update, delete and rotate.
        """
        key = await self._find(key_id, quoted)
        await authz(action, key.project_id, key.name)
        if key.is_disabled:
            raise BadRequest("Key is disabled")
        if observe is not None:
            observe(key)
        return key

    @staticmethod
    def _expect_usage(key: Key, usage: KeyUsage) -> None:
        if key.key_usage != usage:
            raise BadRequest(f"Unsupported key type, expected {usage} but got {key.key_usage}")

    async def keyring(self, key: Key) -> Keyring:
        """The ready-to-use keyring of `key` at its current version (cached; unsealed on miss)."""
        return await self._loader.keyring(key)

    # ----------------------------------------------------------------- key records

    async def create(self, spec: KeySpec, authz: Authorizer) -> Key:
        await authz("create", spec.project_id, None)
        if not algorithms.is_compatible(spec.key_usage, spec.algorithm):
            raise BadRequest(algorithms.incompatibility_message(spec.key_usage))
        # The store's unique constraint is the real guard (a concurrent create still gets
        # DuplicateName); this early check only avoids minting material, up to a second of RSA
        # key generation, for a name that is already taken.
        if await self.store.get_by_name(spec.project_id, spec.name) is not None:
            raise DuplicateName(spec.name, spec.project_id)
        key_id = str(uuid.uuid4())
        sealed = await self._loader.new_material(key_id, 1, spec.algorithm)
        return await self.store.create(key_id, spec, sealed)

    async def get(self, key_id: str, authz: Authorizer) -> Key:
        key = await self._find(key_id)
        await authz("read", key.project_id, key.name)
        return key

    async def get_by_name(self, project_id: str, name: str, authz: Authorizer) -> Key:
        await authz("read", project_id, name)
        key = await self.store.get_by_name(project_id, name)
        if key is None:
            raise NotFound(f'Key with name "{name}" not found for project with ID "{project_id}"')
        return key

    async def list(self, query: ListQuery, authz: Authorizer) -> tuple[KeyList, int]:
        await authz("read", query.project_id, None)
        return await self.store.list(query)

    async def update(
        self, key_id: str, authz: Authorizer, *, name: str | None = None, description: str | None = None,
        is_disabled: bool | None = None, has_delete_protection: bool | None = None,
    ) -> Key:
        key = await self._find(key_id, quoted=False)
        await authz("edit", key.project_id, key.name)
        return await self.store.update(
            key_id, name=name, description=description, is_disabled=is_disabled,
            has_delete_protection=has_delete_protection,
        )

    async def delete(self, key_id: str, authz: Authorizer) -> Key:
        key = await self._find(key_id, quoted=False)
        await authz("delete", key.project_id, key.name)
        if key.has_delete_protection:
            raise BadRequest("Key is protected from deletion. Disable delete protection to delete it.")
        deleted = await self.store.delete(key_id)
        self._loader.forget(key_id)
        return deleted

    async def rotate(self, key_id: str, authz: Authorizer) -> Key:
        """A new current version of an AES key. The record returned is Infisical's: only `version`
        changes (rotation writes the material table, not the key row, so `updatedAt` stays)."""
        key = await self.usable(key_id, "rotate", authz, quoted=False)
        if key.key_usage != KeyUsage.ENCRYPT_DECRYPT:
            raise BadRequest(_ROTATION_REFUSED)
        if not algorithms.is_symmetric(key.algorithm):
            raise BadRequest(_RSA_ROTATION_REFUSED)
        sealed = await self._loader.new_material(key.id, key.version + 1, key.algorithm)
        return await self.store.rotate(key.id, key.version, sealed)

    # ----------------------------------------------------------------- cryptography

    async def encrypt(
        self, key_id: str, plaintext: bytes, authz: Authorizer, *, observe: KeyObserver | None = None
    ) -> bytes:
        key = await self.usable(key_id, "encrypt", authz, observe)
        self._expect_usage(key, KeyUsage.ENCRYPT_DECRYPT)
        ring = await self._loader.keyring(key)
        return ring.encrypt(plaintext)  # public-key or AES work: fast enough inline

    async def decrypt(
        self, key_id: str, ciphertext: bytes, authz: Authorizer, *, observe: KeyObserver | None = None
    ) -> bytes:
        key = await self.usable(key_id, "decrypt", authz, observe)
        self._expect_usage(key, KeyUsage.ENCRYPT_DECRYPT)
        ring = await self._loader.keyring(key)
        try:
            return await self._loader.run(ring, ring.decrypt, ciphertext)
        except DecryptionFailed:
            CRYPTO_FAILURES.labels(reason="decrypt").inc()
            raise

    async def public_key(self, key_id: str, authz: Authorizer) -> bytes:
        key = await self.usable(key_id, "read", authz)
        if not algorithms.is_asymmetric(key.algorithm):
            raise BadRequest(
                f"Unsupported key type, expected sign-verify or key-agreement type but got {key.key_usage}"
            )
        return (await self._loader.keyring(key)).public_key()

    async def signing_algorithms(self, key_id: str, authz: Authorizer) -> tuple[SigningAlgorithm, ...]:
        key = await self.usable(key_id, "read", authz)
        if key.key_usage != KeyUsage.SIGN_VERIFY:
            raise BadRequest(f"Key with ID '{key.id}' is not intended for signing")
        return algorithms.signing_algorithms(key.algorithm)

    async def sign(
        self, key_id: str, algorithm: SigningAlgorithm, data: bytes, is_digest: bool, authz: Authorizer
    ) -> bytes:
        key = await self.usable(key_id, "sign", authz)
        self._expect_usage(key, KeyUsage.SIGN_VERIFY)
        ring = await self._loader.keyring(key)
        return await self._loader.run(ring, ring.sign, algorithm, data, is_digest)

    async def verify(
        self, key_id: str, algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool,
        authz: Authorizer,
    ) -> bool:
        key = await self.usable(key_id, "verify", authz)
        self._expect_usage(key, KeyUsage.SIGN_VERIFY)
        ring = await self._loader.keyring(key)
        return ring.verify(algorithm, data, signature, is_digest)

    async def generate_mac(
        self, key_id: str, data: bytes, authz: Authorizer, *, observe: KeyObserver | None = None
    ) -> bytes:
        key = await self.usable(key_id, "generate-mac", authz, observe)
        if key.key_usage != KeyUsage.GENERATE_VERIFY_MAC:
            raise BadRequest(f"Key with ID '{key.id}' is not intended for MAC generation")
        return (await self._loader.keyring(key)).generate_mac(data)

    async def verify_mac(
        self, key_id: str, data: bytes, mac: bytes, authz: Authorizer, *, observe: KeyObserver | None = None
    ) -> bool:
        key = await self.usable(key_id, "verify-mac", authz, observe)
        if key.key_usage != KeyUsage.GENERATE_VERIFY_MAC:
            raise BadRequest(f"Key with ID '{key.id}' is not intended for MAC verification")
        return (await self._loader.keyring(key)).verify_mac(data, mac)

    async def derive_shared_secret(self, key_id: str, peer_public_key: bytes, authz: Authorizer) -> bytes:
        key = await self.usable(key_id, "derive-shared-secret", authz)
        if key.key_usage != KeyUsage.KEY_AGREEMENT:
            raise BadRequest(f"Key with ID '{key.id}' is not intended for shared secret derivation")
        ring = await self._loader.keyring(key)
        return await self._loader.run(ring, ring.derive_shared_secret, peer_public_key)

    # ----------------------------------------------------------------- export and import
    # The logic lives in kms_core.transfer; these keep one entry point for every route.

    async def export_private_key(self, key_id: str, authz: Authorizer) -> bytes:
        return await transfer.export_private_key(self, key_id, authz)

    async def bulk_export(self, key_ids: Iterable[str], authz: Authorizer) -> ExportList:
        return await transfer.bulk_export(self, key_ids, authz)

    async def bulk_import(
        self, project_id: str, entries: Iterable[ImportEntry], authz: Authorizer
    ) -> tuple[KeyList, ImportErrors]:
        return await transfer.bulk_import(self, project_id, entries, authz)

    # ----------------------------------------------------------------- lifecycle

    async def ready(self) -> None:
        """Raise Unavailable unless the store can serve and the sealer can seal and unseal."""
        await self._loader.ready()

    async def close(self) -> None:
        self._loader.close()
        await self.store.close()
