"""Which KmsKey may use a material Secret, as the API decides it: by the Secret's owner record.

The operator seals an owner record into every material Secret (kms_core.ownership). The API
serves a key only when that record opens under the API's sealer and names exactly the KmsKey
being served (namespace, name and UID); `status.keyId`, labels and the spec are never enough,
since a tenant can write its own KmsKey's status and re-create objects under old names.
Opened records are cached by the annotation's value, so a warm key costs a dictionary lookup.

Security property: only records are opened here (names, a UID, attributes), never material; a
record that does not authenticate serves nothing and is logged with the key id only.
"""

from __future__ import annotations

import asyncio
import logging

from kms_core.ownership import OWNER_RECORD_ANNOTATION, OwnerRecord, RecordInvalid, open_record
from kms_core.sealing.base import Sealer
from kms_kube.client import JsonDict

log = logging.getLogger("kms_api.kube.store")


class RecordBook:
    """Opened owner records, keyed by (key id, sealed annotation value); bounded."""

    def __init__(self, sealer: Sealer, max_entries: int = 250_000) -> None:
        self.sealer = sealer
        self.max_entries = max_entries
        self._opened: dict[tuple[str, str], OwnerRecord | None] = {}
        # Root-key unsealing costs microseconds; an HSM round trip is kept off the event loop.
        self._inline = sealer.backend == "rootkey"

    def cached(self, key_id: str, value: str | None) -> OwnerRecord | None:
        """The record already opened for this annotation value, without opening anything."""
        return self._opened.get((key_id, value)) if value else None

    async def record(self, secret: JsonDict | None, key_id: str) -> OwnerRecord | None:
        """The authenticated owner record of `secret` (the Secret of `key_id`), or None."""
        if secret is None:
            return None
        value = ((secret.get("metadata") or {}).get("annotations") or {}).get(OWNER_RECORD_ANNOTATION)
        if not isinstance(value, str):
            return None  # material from before records: served once the operator records it
        slot = (key_id, value)
        if slot in self._opened:
            return self._opened[slot]
        try:
            if self._inline:
                record: OwnerRecord | None = open_record(value, key_id, self.sealer)
            else:
                record = await asyncio.to_thread(open_record, value, key_id, self.sealer)
        except RecordInvalid:
            log.warning("owner record does not authenticate; key not served", extra={"key_id": key_id})
            record = None
        if len(self._opened) >= self.max_entries:
            self._opened.clear()  # rare (more Secrets than entries): start over rather than track age
        self._opened[slot] = record
        return record


def serves(record: OwnerRecord | None, obj: JsonDict | None) -> bool:
    """Whether `record` names exactly the KmsKey object `obj`."""
    if record is None or obj is None:
        return False
    meta = obj.get("metadata") or {}
    return record.owned_by(str(meta.get("namespace") or ""), str(meta.get("name") or ""), meta.get("uid"))
