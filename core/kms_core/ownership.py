"""The owner record of a key's material: who minted it and what it is, sealed like the material.

In Kubernetes mode every material Secret carries one record (annotation `kubekms.io/owner-record`):
the KmsKey that owns the material (namespace, name and UID) and the attributes fixed when the
material was minted (key usage, algorithm, exportable, and Transit's derivation flags). The record
is sealed with the same sealer
as the material, under the AAD `kubekms/v1|owner|<keyId>`, so:
- labels, annotations and KmsKey `spec`/`status` fields are hints at most; only a record that
  unseals decides which KmsKey may use the material and how (`exportable` is read from here,
  never from the spec a tenant can re-create);
- a record cannot be copied from one Secret to another (the AAD names the key id) and cannot be
  written by anyone who does not hold the KEK (the operator; the API only opens records);
- a derived key's record has format 2 (`derived`, `convergentEncryption`); a plain key's keeps
  format 1, which has no such fields. A reader that predates derivation refuses format 2, so it
  fails closed instead of serving a derived key with its plain material.

Both processes use this module: the operator writes records (on creation, adoption and transfer)
and refuses adoption across namespaces; the API serves a key only when its record names the
KmsKey asking (same namespace and UID).

Security property: a record holds names, a UID and attributes, never material; opening one that
was forged, moved or sealed under another KEK raises `RecordInvalid` with no detail.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from typing import Final

from kms_core.model import Algorithm, KeyUsage
from kms_core.sealing.base import Sealer, UnsealError

__all__ = [
    "OWNER_RECORD_ANNOTATION",
    "TRANSFER_ANNOTATION",
    "OwnerRecord",
    "RecordInvalid",
    "open_record",
    "seal_record",
]

OWNER_RECORD_ANNOTATION: Final = "kubekms.io/owner-record"
# Set on a material Secret by a KubeKMS administrator (in the KubeKMS namespace, where tenants
# have no rights): the namespace allowed to adopt the material once its recorded owner is gone.
TRANSFER_ANNOTATION: Final = "kubekms.io/transfer-to"
_FORMAT: Final = 1
_FORMAT_DERIVED: Final = 2  # format 1 plus `derived` and `convergentEncryption`


class RecordInvalid(Exception):
    """The record is missing, malformed, sealed under another KEK or moved from another key."""


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """The KmsKey a key's material belongs to and the material's immutable attributes."""

    key_id: str
    namespace: str
    name: str
    uid: str
    usage: KeyUsage
    algorithm: Algorithm
    exportable: bool
    # Transit's derivation (kms_core.derivation): which key a request uses is decided by the
    # material's record, never by a spec a tenant can re-create.
    derived: bool = False
    convergent: bool = False

    def owned_by(self, namespace: str, name: str, uid: str | None) -> bool:
        """True for exactly the KmsKey object recorded (a re-created namespace/name has a new UID)."""
        return bool(uid) and (self.namespace, self.name, self.uid) == (namespace, name, uid)

    def handed_to(self, namespace: str, name: str, uid: str) -> OwnerRecord:
        """The record after adoption by another KmsKey: a new owner, the same attributes."""
        return replace(self, namespace=namespace, name=name, uid=uid)


def _aad(key_id: str) -> bytes:
    return f"kubekms/v1|owner|{key_id}".encode()


def seal_record(record: OwnerRecord, sealer: Sealer) -> str:
    """The annotation value for `record`: base64 of the sealed JSON document."""
    if record.convergent and not record.derived:
        raise ValueError("convergent encryption requires derivation")
    document: dict[str, object] = {
        "v": _FORMAT_DERIVED if record.derived else _FORMAT,
        "keyId": record.key_id,
        "namespace": record.namespace,
        "name": record.name,
        "uid": record.uid,
        "keyUsage": record.usage.value,
        "algorithm": record.algorithm.value,
        "exportable": record.exportable,
    }
    if record.derived:
        document.update(derived=True, convergentEncryption=record.convergent)
    plain = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(sealer.seal(plain, _aad(record.key_id))).decode()


def open_record(value: str | None, key_id: str, sealer: Sealer) -> OwnerRecord:
    """The record in annotation `value` of the Secret of `key_id`; RecordInvalid unless it
    unseals under this sealer for exactly this key id and is well formed."""
    if not value:
        raise RecordInvalid("no owner record")
    try:
        plain = sealer.unseal(base64.b64decode(value, validate=True), _aad(key_id))
        doc = json.loads(plain)
        known = isinstance(doc, dict) and doc.get("v") in (_FORMAT, _FORMAT_DERIVED)
        if not known or doc.get("keyId") != key_id:
            raise RecordInvalid("unexpected owner record")
        fields = [doc.get(f) for f in ("namespace", "name", "uid")]
        if not all(isinstance(f, str) and f for f in fields) or not isinstance(doc.get("exportable"), bool):
            raise RecordInvalid("incomplete owner record")
        derived, convergent = _derivation(doc)
        return OwnerRecord(
            key_id=key_id,
            namespace=str(doc["namespace"]),
            name=str(doc["name"]),
            uid=str(doc["uid"]),
            usage=KeyUsage(str(doc.get("keyUsage"))),
            algorithm=Algorithm(str(doc.get("algorithm"))),
            exportable=bool(doc["exportable"]),
            derived=derived,
            convergent=convergent,
        )
    except RecordInvalid:
        raise
    except (UnsealError, binascii.Error, ValueError, TypeError):
        raise RecordInvalid("owner record does not authenticate") from None


def _derivation(doc: dict[str, object]) -> tuple[bool, bool]:
    """(derived, convergent) of a record document: format 1 has neither field (a plain key);
    format 2 is a derived key and must say so, and whether it is convergent, in booleans."""
    if doc.get("v") == _FORMAT:
        if "derived" in doc or "convergentEncryption" in doc:
            raise RecordInvalid("unexpected owner record")
        return False, False
    derived, convergent = doc.get("derived"), doc.get("convergentEncryption")
    if derived is not True or not isinstance(convergent, bool):
        raise RecordInvalid("incomplete owner record")
    return True, convergent
