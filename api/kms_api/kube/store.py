"""KeyStore on Kubernetes: key records are KmsKey objects, sealed material is in operator Secrets.

Reads come from watch-fed caches (read-through on a miss); writes go to KmsKey objects and wait
for the operator, the only writer of key material (`generates_material = True`; the write path
is `writes.KmsKeyWriter`). Bulk import is refused per entry: accepting raw material would make
the API a second writer of Secrets.
Security property: this store sees sealed blobs only and never writes material.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kms_api.kube import kmskey as kk
from kms_api.kube.cache import ObjectCache
from kms_api.kube.cache import object_key as _name
from kms_api.kube.client import JsonDict, KubeClient
from kms_api.kube.nameindex import NameIndex
from kms_api.kube.writes import IMPORT_REFUSED, RENAME_REFUSED, KmsKeyWriter, call
from kms_core.errors import BadRequest, NotFound, Unavailable
from kms_core.model import Key, KeySpec, KeyVersion
from kms_core.stores.base import ListQuery

__all__ = ["IMPORT_REFUSED", "RENAME_REFUSED", "KubernetesKeyStore"]

log = logging.getLogger(__name__)


class KubernetesKeyStore:
    """The Kubernetes-mode KeyStore. `namespace` is the KubeKMS namespace holding key Secrets;
    `list_page_size` is the `limit` of the caches' list requests (0: unpaginated)."""

    generates_material = True

    def __init__(
        self, client: KubeClient, namespace: str, *, ready_timeout: float = 30.0, sync_timeout: float = 5.0,
        list_page_size: int = 500,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.sync_timeout = sync_timeout
        self.keys = ObjectCache(
            client, "kmskeys", kk.kmskeys_path(), lambda ns, n: kk.kmskeys_path(ns, n),
            indexers={"keyId": kk.key_id}, page_size=list_page_size,
        )
        self.names = NameIndex()
        self.keys.add_listener(self.names)
        self.secrets = ObjectCache(
            client, "secrets", kk.secrets_path(namespace), lambda ns, n: kk.secrets_path(ns, n),
            params={"labelSelector": kk.KEY_ID_LABEL},
            # The server may ignore the selector (or an emulator may); filter here too.
            accept=lambda obj: kk.secret_key_id(obj) is not None,
            indexers={"keyId": kk.secret_key_id}, page_size=list_page_size,
        )
        self._writes = KmsKeyWriter(client, self.keys, ready_timeout=ready_timeout)
        self._org_id: str | None = None
        self._started = False

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
            self.keys.start()
            self.secrets.start()

    async def _synced(self) -> None:
        await self.start()
        if not await self.keys.wait_synced(self.sync_timeout):
            raise Unavailable("The Kubernetes API server is unavailable: KmsKeys cannot be listed yet")

    async def close(self) -> None:
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

    async def _key(self, obj: JsonDict | None) -> Key | None:
        if obj is None or not kk.is_live(obj):
            return None
        try:
            return kk.to_key(obj, await self.org_id())
        except ValueError:  # an algorithm or usage this version does not know
            log.warning("skipping KmsKey %s/%s with unknown usage or algorithm", *_name(obj))
            return None

    async def _object(self, key_id: str) -> JsonDict | None:
        """The live KmsKey with `status.keyId == key_id`: cache index, else via the key's Secret."""
        await self._synced()
        obj = self.keys.lookup("keyId", key_id)
        if obj is not None and kk.is_live(obj):
            return obj
        secret = self.secrets.lookup("keyId", key_id) or await call(
            self.secrets.read_through(self.namespace, kk.secret_name(key_id))
        )
        owner = kk.owner(secret) if secret is not None else None
        if owner is None:
            return None
        obj = await call(self.keys.read_through(*owner))
        return obj if obj is not None and kk.key_id(obj) == key_id and kk.is_live(obj) else None

    async def get(self, key_id: str) -> Key | None:
        return await self._key(await self._object(key_id))

    async def get_by_name(self, project_id: str, name: str) -> Key | None:
        await self._synced()
        obj = self.keys.get(project_id, name)
        if obj is None:
            obj = await call(self.keys.read_through(project_id, name))
        return await self._key(obj)

    async def list(self, query: ListQuery) -> tuple[list[Key], int]:
        """One page from the sorted name index (see nameindex.py); totalCount is 0 on an empty
        page, the spec quirk the embedded store shares."""
        await self._synced()
        names, total = self.names.page(query)
        window = [self.keys.get(query.project_id, name) for name in names]
        page = [k for k in [await self._key(o) for o in window] if k is not None]
        return page, (total if page else 0)

    async def versions(self, key_id: str) -> Sequence[KeyVersion]:
        await self._synced()
        obj = self.keys.lookup("keyId", key_id)
        wanted = kk.version(obj) if obj is not None else 1
        secret = self.secrets.lookup("keyId", key_id)
        found = kk.to_versions(secret, key_id) if secret is not None else []
        if not found or found[0].version < wanted:
            # The Secret watch may lag the KmsKey watch right after a create or rotation.
            secret = await call(self.secrets.read_through(self.namespace, kk.secret_name(key_id)))
            found = kk.to_versions(secret, key_id) if secret is not None else []
        return found

    # ---- writes (KmsKeyWriter sends the requests) ---------------------------------------------
    async def create(self, key_id: str, spec: KeySpec, sealed: bytes | None) -> Key:
        """Write a KmsKey and wait until the operator reports it Ready.

        `key_id` is not used: the operator mints the keyId together with the material, and the
        returned Key carries it. `sealed` material is refused (see IMPORT_REFUSED).
        """
        if sealed is not None:
            raise BadRequest(IMPORT_REFUSED)
        await self._synced()
        key = await self._key(await self._writes.create(spec))
        assert key is not None  # is_ready implies is_live
        return key

    async def update(
        self, key_id: str, *, name: str | None = None, description: str | None = None,
        is_disabled: bool | None = None, has_delete_protection: bool | None = None,
    ) -> Key:
        obj = await self._require(key_id)
        patched = await self._writes.update(
            key_id, obj, name=name, description=description, is_disabled=is_disabled,
            has_delete_protection=has_delete_protection,
        )
        key = await self._key(patched)
        if key is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return key

    async def delete(self, key_id: str) -> Key:
        obj = await self._require(key_id)
        key = await self._key(obj)
        assert key is not None
        await self._writes.delete(key_id, obj)
        return key

    async def rotate(self, key_id: str, expected_version: int, sealed: bytes | None) -> Key:
        """Ask the operator for version `expected_version + 1` and wait for it (see KmsKeyWriter)."""
        if sealed is not None:
            raise BadRequest(IMPORT_REFUSED)
        obj = await self._require(key_id)
        key = await self._key(await self._writes.rotate(key_id, obj, expected_version))
        assert key is not None
        return key

    async def _require(self, key_id: str) -> JsonDict:
        obj = await self._object(key_id)
        if obj is None:
            raise NotFound(f"Key with ID {key_id} not found")
        return obj
