"""KeyStore on Kubernetes: key records are KmsKey objects, sealed material is in operator Secrets.

Reads come from watch-fed caches (read-through on a miss); writes go to KmsKey objects and wait
for the operator, the only writer of key material (`generates_material = True`; the write path
is `writes.KmsKeyWriter`). Bulk import is refused per entry: accepting raw material would make
the API a second writer of Secrets.
A key is served only when the operator vouched for it: its KmsKey is Ready and the sealed owner
record in its Secret names that KmsKey (namespace, name, UID); usage, algorithm and
exportability come from that record (custody.py).
Security property: this store sees sealed blobs only and never writes material.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from kms_api.kube import events
from kms_api.kube import kmskey as kk
from kms_api.kube.custody import RecordBook, serves
from kms_api.kube.nameindex import NameIndex
from kms_api.kube.writes import DERIVATION_NOT_KEPT, IMPORT_REFUSED, RENAME_REFUSED, KmsKeyWriter, call
from kms_core.errors import BadRequest, NotFound, Unavailable
from kms_core.gcmusage import GCM_USAGE
from kms_core.model import DeletedKey, Key, KeySpec, KeyVersion
from kms_core.ownership import OwnerRecord
from kms_core.sealing.base import Sealer
from kms_core.stores.base import Generation, ListQuery
from kms_kube import layout
from kms_kube.client import JsonDict, KubeClient
from kms_kube.layout import Policy
from kms_kube.reflector import ObjectCache

__all__ = [
    "DERIVATION_NOT_KEPT",
    "EXPORTABLE_IMMUTABLE",
    "IMPORT_REFUSED",
    "LIFECYCLE_IN_SPEC",
    "PLAINTEXT_BACKUP_REFUSED",
    "RENAME_REFUSED",
    "RESTORE_IN_SPEC",
    "KubernetesKeyStore",
]

# The CRD's CEL rule keeps spec.exportable as created (kubectl would be refused the same way).
EXPORTABLE_IMMUTABLE = (
    "A KmsKey's exportable is immutable in Kubernetes mode (the CRD's rule): create the key exportable"
)
# The KmsKey has no field for it, and the API is not a writer of material (no restore either).
PLAINTEXT_BACKUP_REFUSED = (
    "allow_plaintext_backup is not supported in Kubernetes mode: a KmsKey has no field for it, and "
    "its material is backed up with the operator's Secrets and root key"
)

RESTORE_IN_SPEC = (
    "In Kubernetes mode a deleted key is restored by creating a KmsKey with spec.keyId set to its id "
    "in the key's namespace, within the operator's deletion window (KUBEKMS_DELETION_WINDOW); its "
    "material Secret is labelled kubekms.io/deleted until then"
)
# Kept for callers of the earlier placeholder: the lifecycle now goes through the KmsKey spec.
LIFECYCLE_IN_SPEC = (
    "In Kubernetes mode a key's rotation period and version bounds are declared in its KmsKey "
    "spec (rotationPeriod, minDecryptionVersion, minEncryptionVersion, minAvailableVersion)"
)

log = logging.getLogger(__name__)


class KubernetesKeyStore:
    """The Kubernetes-mode KeyStore. `namespace` is the KubeKMS namespace holding key Secrets;
    `list_page_size` is the `limit` of the caches' list requests (0: unpaginated)."""

    generates_material = True

    def __init__(
        self, client: KubeClient, namespace: str, sealer: Sealer, *, ready_timeout: float = 30.0,
        sync_timeout: float = 5.0, list_page_size: int = 500,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.sync_timeout = sync_timeout
        self.book = RecordBook(sealer)
        self.keys = ObjectCache(
            client, "kmskeys", kk.kmskeys_path(), lambda ns, n: kk.kmskeys_path(ns, n),
            page_size=list_page_size, transform=layout.slim_kmskey,
        )
        self.names = NameIndex()
        self.keys.add_listener(self.names)
        self.secrets = ObjectCache(
            client, "secrets", kk.secrets_path(namespace), lambda ns, n: kk.secrets_path(ns, n),
            params={"labelSelector": kk.KEY_ID_LABEL},
            # The server may ignore the selector (or an emulator may); filter here too.
            accept=lambda obj: kk.secret_key_id(obj) is not None,
            page_size=list_page_size,
        )
        self._writes = KmsKeyWriter(client, self.keys, ready_timeout=ready_timeout)
        self._org_id: str | None = None
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ready_timeout(self) -> float:
        """Seconds a create or rotation waits for the operator before answering 504."""
        return self._writes.ready_timeout

    @ready_timeout.setter
    def ready_timeout(self, seconds: float) -> None:
        self._writes.ready_timeout = seconds

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start both watches (idempotent). Does not wait: an absent API server is retried."""
        if not self._started:
            self._started = True
            self._loop = asyncio.get_running_loop()
            self.keys.start()
            self.secrets.start()
            GCM_USAGE.listeners.append(self.nonce_budget_low)

    def nonce_budget_low(self, key_id: str, version: int, count: int) -> None:
        """A version of `key_id` crossed the AES-GCM warning threshold: a Warning Event on its
        KmsKey (found from the caches only; this runs on the encrypting thread)."""
        secret = self.secrets.get(self.namespace, kk.secret_name(key_id))
        notes = ((secret or {}).get("metadata") or {}).get("annotations") or {}
        record = self.book.cached(key_id, notes.get(layout.OWNER_RECORD))
        obj = self.keys.get(record.namespace, record.name) if record is not None else None
        if obj is None or not serves(record, obj) or self._loop is None:
            return
        message = (
            f"AES-GCM key {key_id} version {version} has made {count} encryptions in one API replica; "
            "rotate the key (random nonces allow at most 2^32 encryptions per key version)"
        )
        events.schedule(self._loop, self.client, events.warning(obj, "RotationRecommended", message))

    async def _synced(self) -> None:
        await self.start()
        if not await self.keys.wait_synced(self.sync_timeout):
            raise Unavailable("The Kubernetes API server is unavailable: KmsKeys cannot be listed yet")

    async def close(self) -> None:
        if self.nonce_budget_low in GCM_USAGE.listeners:
            GCM_USAGE.listeners.remove(self.nonce_budget_low)
        await self.keys.stop()
        await self.secrets.stop()
        await self.client.close()

    async def ready(self) -> None:
        """Ready once both caches hold a full list: a replica that answered traffic before then
        would send 503s (or slow read-throughs) for every key until its watches caught up."""
        await self.start()
        await self.org_id()
        if not (self.keys.synced and self.secrets.synced):
            raise Unavailable("The KmsKey and Secret caches are still loading")

    # ---- reads ---------------------------------------------------------------------------------
    async def org_id(self) -> str:
        if self._org_id is None:
            ns = await call(self.client.get("/api/v1/namespaces/kube-system"))
            uid = (ns.get("metadata") or {}).get("uid")
            if not uid:
                raise Unavailable("The kube-system namespace has no UID")
            self._org_id = str(uid)
        return self._org_id

    async def _record(self, obj: JsonDict | None) -> OwnerRecord | None:
        """The owner record vouching for the KmsKey `obj`, or None: the key must be Ready (the
        operator converged it) and its Secret's sealed record must name exactly this object."""
        if obj is None or not kk.is_ready(obj):
            return None
        key_id = kk.key_id(obj)
        assert key_id is not None  # is_ready implies a keyId
        record = await self.book.record(await self._secret(key_id), key_id)
        return record if serves(record, obj) else None

    async def _secret(self, key_id: str) -> JsonDict | None:
        name = kk.secret_name(key_id)
        secret = self.secrets.get(self.namespace, name)
        if secret is None:
            secret = await call(self.secrets.read_through(self.namespace, name))
        return secret

    async def _key(self, obj: JsonDict | None, record: OwnerRecord | None) -> Key | None:
        if obj is None or record is None:
            return None
        return kk.to_key(obj, await self.org_id(), record)

    async def _object(self, key_id: str) -> tuple[JsonDict, OwnerRecord] | None:
        """The KmsKey serving `key_id` and its record. Routing goes keyId -> Secret -> record ->
        the KmsKey it names (namespace, name, UID): another object reporting the same keyId in
        its status never gets the material."""
        await self._synced()
        record = await self.book.record(await self._secret(key_id), key_id)
        if record is None:
            return None
        obj = self.keys.get(record.namespace, record.name)
        if not _vouched(obj, record, key_id):
            # The KmsKey watch may lag the Secret's (e.g. right after an adoption): read it once.
            obj = await call(self.keys.read_through(record.namespace, record.name))
        return (obj, record) if obj is not None and _vouched(obj, record, key_id) else None

    async def get(self, key_id: str) -> Key | None:
        found = await self._object(key_id)
        return await self._key(*found) if found is not None else None

    async def get_by_name(self, project_id: str, name: str) -> Key | None:
        await self._synced()
        obj = self.keys.get(project_id, name)
        if obj is None:
            obj = await call(self.keys.read_through(project_id, name))
        return await self._key(obj, await self._record(obj))

    async def list(self, query: ListQuery) -> tuple[list[Key], int]:
        """One page from the sorted name index (see nameindex.py); totalCount is 0 on an empty
        page, the spec quirk the embedded store shares."""
        await self._synced()
        names, total = self.names.page(query)
        window = [self.keys.get(query.project_id, name) for name in names]
        page = [k for k in [await self._key(o, await self._record(o)) for o in window] if k is not None]
        return page, (total if page else 0)

    async def versions(self, key_id: str) -> Sequence[KeyVersion]:
        found_key = await self._object(key_id)
        if found_key is None:
            return []
        wanted = kk.version(found_key[0])
        secret = self.secrets.get(self.namespace, kk.secret_name(key_id))
        found = kk.to_versions(secret, key_id) if secret is not None else []
        if not found or found[0].version < wanted:
            # The Secret watch may lag the KmsKey watch right after a create or rotation.
            secret = await call(self.secrets.read_through(self.namespace, kk.secret_name(key_id)))
            found = kk.to_versions(secret, key_id) if secret is not None else []
        return found

    async def count_by_state(self) -> tuple[int, int] | None:
        """(enabled, disabled) Ready KmsKeys in every namespace, from the KmsKey cache alone.

        None until that cache holds a full list: the count never starts a watch (a replica's
        caches start with its first request or readiness probe) nor reads the API server. It
        counts what the operator reports Ready without opening owner records (a gauge, not an
        access decision), and each replica reports the cluster-wide count."""
        if not self.keys.synced:
            return None
        enabled = disabled = 0
        for obj in self.keys.values():
            if kk.is_ready(obj):
                if (obj.get("spec") or {}).get("disabled"):
                    disabled += 1
                else:
                    enabled += 1
        return enabled, disabled

    # ---- writes (KmsKeyWriter sends the requests) ---------------------------------------------
    async def create(self, key_id: str, spec: KeySpec, sealed: bytes | None) -> Key:
        """Write a KmsKey and wait until the operator reports it Ready.

        `key_id` is not used: the operator mints the keyId together with the material, and the
        returned Key carries it. `sealed` material is refused (see IMPORT_REFUSED).
        """
        if sealed is not None:
            raise BadRequest(IMPORT_REFUSED)
        if spec.allow_plaintext_backup:
            raise BadRequest(PLAINTEXT_BACKUP_REFUSED)
        await self._synced()
        created = await self._writes.create(spec)
        key = await self._key(created, await self._record(created))
        if key is None:
            # Ready, but its Secret's record does not name it: never serve it (see custody.py).
            raise Unavailable("The new key's material is not available yet; retry shortly")
        if (key.derived, key.convergent_encryption) != (spec.derived, spec.convergent_encryption):
            # The owner record decides how the key derives: an operator from before derivation
            # records it plain. Never answer as if the request had been honoured.
            raise BadRequest(DERIVATION_NOT_KEPT)
        return key

    async def update(
        self, key_id: str, *, name: str | None = None, description: str | None = None,
        is_disabled: bool | None = None, has_delete_protection: bool | None = None,
        is_exportable: bool | None = None, allow_plaintext_backup: bool | None = None,
    ) -> Key:
        obj, record = await self._require(key_id)
        if allow_plaintext_backup:
            raise BadRequest(PLAINTEXT_BACKUP_REFUSED)
        if is_exportable is not None and is_exportable != bool(obj.get("spec", {}).get("exportable", False)):
            raise BadRequest(EXPORTABLE_IMMUTABLE)
        patched = await self._writes.update(
            key_id, obj, name=name, description=description, is_disabled=is_disabled,
            has_delete_protection=has_delete_protection,
        )
        key = await self._key(patched, record if serves(record, patched) else None)
        if key is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return key

    async def delete(self, key_id: str, purge_at: datetime | None = None) -> Key:
        # The recovery window of a KmsKey's material is the operator's (deletionPolicy and the
        # Secret's labels), whatever the API process was told.
        obj, record = await self._require(key_id)
        key = await self._key(obj, record)
        assert key is not None
        await self._writes.delete(key_id, obj)
        return key

    async def rotate(
        self, key_id: str, expected_version: int, sealed: bytes | None, *, at: datetime | None = None,
        imported: bool = False,
    ) -> Key:
        """Ask the operator for version `expected_version + 1` and wait for it (see KmsKeyWriter);
        the operator stamps it (`at` is for stores that record the time themselves)."""
        if sealed is not None:
            raise BadRequest(IMPORT_REFUSED)
        obj, record = await self._require(key_id)
        rotated = await self._writes.rotate(key_id, obj, expected_version)
        key = await self._key(rotated, record if serves(record, rotated) else None)
        if key is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return key

    # -- lifecycle: declared on the KmsKey and carried out by the operator ----------------------

    async def set_policy(self, key_id: str, expected: Generation, wanted: Key) -> Key:
        """Write the rotation period and version bounds into the KmsKey spec and wait until the
        operator put them in force (its refusal is a 400 with the lifecycle rule's message)."""
        return await self._change_policy(key_id, expected, _policy(wanted), trim=False)

    async def trim(self, key_id: str, expected: Generation, min_available: int) -> Key:
        """Write spec.minAvailableVersion and wait until the operator destroyed the versions
        below it in the material Secret."""
        obj, record = await self._require(key_id)
        current = await self._key(obj, record)
        assert current is not None
        wanted = replace(_policy(current), min_available_version=min_available)
        return await self._change_policy(key_id, expected, wanted, trim=True)

    async def _change_policy(self, key_id: str, expected: Generation, wanted: Policy, *, trim: bool) -> Key:
        obj, record = await self._require(key_id)
        current = await self._key(obj, record)
        if current is None or current.generation != expected:
            raise BadRequest("The key changed concurrently; retry with its current state")
        done = await self._writes.set_policy(key_id, obj, wanted, trim=trim)
        key = await self._key(done, record if serves(record, done) else None)
        if key is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return key

    async def due_for_rotation(self, now: datetime) -> Sequence[Key]:
        return []  # the operator rotates KmsKeys on schedule (status.nextRotationTime)

    # Deleted keys live in the operator's domain (the material Secret's labels); the API offers
    # no listing or restore of its own but says how to do it.
    async def deleted(self, project_id: str) -> Sequence[DeletedKey]:
        raise BadRequest(RESTORE_IN_SPEC)

    async def deleted_key(self, key_id: str) -> DeletedKey | None:
        raise BadRequest(RESTORE_IN_SPEC)

    async def restore(self, key_id: str, name: str | None) -> Key:
        raise BadRequest(RESTORE_IN_SPEC)

    async def purge(self, key_id: str) -> DeletedKey:
        raise BadRequest(RESTORE_IN_SPEC)

    async def expired(self, now: datetime) -> Sequence[DeletedKey]:
        return []  # the operator purges deleted keys' Secrets after its window

    async def _require(self, key_id: str) -> tuple[JsonDict, OwnerRecord]:
        obj = await self._object(key_id)
        if obj is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return obj


def _policy(key: Key) -> Policy:
    return Policy(
        rotation_period=key.rotation_period, min_decryption_version=key.min_decryption_version,
        min_encryption_version=key.min_encryption_version, min_available_version=key.min_available_version,
    )


def _vouched(obj: JsonDict | None, record: OwnerRecord, key_id: str) -> bool:
    """`obj` is the Ready KmsKey the record names, reporting `key_id`."""
    return obj is not None and serves(record, obj) and kk.is_ready(obj) and kk.key_id(obj) == key_id
