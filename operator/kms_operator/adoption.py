"""Custody of key material: which KmsKey may use a material Secret, decided by its owner record.

The owner record (kms_core.ownership) is written when material is minted and names the KmsKey
object (namespace, name, UID) and the material's fixed attributes. `claim` runs on every
reconciliation, before anything else reads the material:
- the recorded owner (same namespace, name and UID) keeps using it;
- any other KmsKey may take it over only with `spec.keyId`, only once the recorded owner is gone,
  and only from the recorded owner's namespace — or from the namespace a KubeKMS administrator
  named in the Secret's `kubekms.io/transfer-to` annotation (the Secret lives in the KubeKMS
  namespace, where tenants have no rights);
- the spec must state the recorded usage, algorithm, exportability and derivation (`derived`,
  `convergentEncryption`): a key deleted and re-created with `exportable: true` does not become
  exportable, nor does a derived key become plain (or the reverse).
A KmsKey that may not take the material stays Degraded with a message that names no other
namespace's objects, and the Secret is not touched. Material from before owner records existed
gets a record once, for the KmsKey its labels name (the labels were the operator's own).

Security property: nothing here unseals material; records are opened and sealed with the
operator's sealer, and adoption is one resourceVersion-guarded patch, so two claimants can never
both win.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kms_core.model import Algorithm, KeyUsage
from kms_core.ownership import (
    OWNER_RECORD_ANNOTATION,
    TRANSFER_ANNOTATION,
    OwnerRecord,
    RecordInvalid,
    open_record,
    seal_record,
)
from kms_kube import layout as m
from kms_kube.layout import kmskey_path, secrets_path
from kms_operator import events
from kms_operator.context import Degraded, Runtime, escape, set_label

ADOPTION_RULE = (
    "material is adopted only from the namespace of the KmsKey that created it, or from a namespace "
    f"a KubeKMS administrator names in the Secret's {TRANSFER_ANNOTATION} annotation"
)


async def record_for_new(
    rt: Runtime, key: dict[str, Any], key_id: str, usage: KeyUsage, alg: Algorithm
) -> str:
    """The sealed owner record of material about to be minted for `key`."""
    meta = key["metadata"]
    derived, convergent = derivation(key)
    record = OwnerRecord(
        key_id=key_id, namespace=meta["namespace"], name=meta["name"], uid=str(meta.get("uid") or ""),
        usage=usage, algorithm=alg, exportable=bool((key.get("spec") or {}).get("exportable", False)),
        derived=derived, convergent=convergent,
    )
    return await asyncio.to_thread(seal_record, record, rt.sealer)


async def read_record(rt: Runtime, secret: dict[str, Any], key_id: str) -> OwnerRecord | None:
    """The Secret's owner record; None when it has none (material older than records).
    Raises Degraded when a record is present but does not authenticate."""
    notes = m.annotations_of(secret)
    value = notes.get(OWNER_RECORD_ANNOTATION)
    if value is None:
        return None
    try:
        return await asyncio.to_thread(open_record, value, key_id, rt.sealer)
    except RecordInvalid:
        if notes.get(m.KEK_ID) != rt.sealer.kek_id:
            raise Degraded(
                "KekMismatch",
                f"Secret {m.secret_name(key_id)} was sealed with kek_id {notes.get(m.KEK_ID)} but this "
                f"operator's key has kek_id {rt.sealer.kek_id}; nothing was written",
            ) from None
        raise Degraded(
            "OwnerRecordInvalid",
            f"the owner record of Secret {m.secret_name(key_id)} does not authenticate; nothing was written",
        ) from None


async def claim(
    rt: Runtime, key: dict[str, Any], secret: dict[str, Any], key_id: str, adopted: bool,
    usage: KeyUsage, alg: Algorithm,
) -> dict[str, Any]:
    """Return the Secret if `key` may use it (adopting it when allowed), else raise Degraded."""
    meta = key["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], str(meta.get("uid") or "")
    exportable = bool((key.get("spec") or {}).get("exportable", False))
    fixed = (usage, alg, exportable, *derivation(key))
    if m.labels_of(secret).get(m.KEY_ID) != key_id:
        raise Degraded("SecretConflict", f"Secret {m.secret_name(key_id)} is labelled for another key id")
    record = await read_record(rt, secret, key_id)
    if record is None:
        record = _legacy_record(secret, key, key_id, adopted, usage, alg)
    elif record.owned_by(ns, name, uid):
        _check_attributes(record, *fixed)
        return await _sync_hints(rt, secret, key_id, ns, name)
    elif not adopted:
        raise Degraded(
            "SecretConflict",
            f"the material of key {key_id} belongs to another KmsKey; nothing was written",
        )
    else:
        transfer = m.annotations_of(secret).get(TRANSFER_ANNOTATION)
        if ns not in (record.namespace, transfer):
            raise _refused(key_id, ns)
        if await _owner_present(rt, record):
            # Naming the holder is fine within one namespace; across namespaces it would leak.
            same = ns == record.namespace
            holder = f"KmsKey {record.namespace}/{record.name}" if same else "another KmsKey"
            raise Degraded("SecretInUse", f"key {key_id} is in use by {holder}")
    _check_attributes(record, *fixed)
    return await _take(rt, key, secret, record.handed_to(ns, name, uid))


def _legacy_record(
    secret: dict[str, Any], key: dict[str, Any], key_id: str, adopted: bool, usage: KeyUsage, alg: Algorithm
) -> OwnerRecord:
    """A record for material minted before records existed, trusting the operator's own labels:
    the labelled owner itself, or (with spec.keyId) a KmsKey in the labelled owner's namespace
    once the material is orphaned. Exportability is not known for orphaned material: it is
    recorded as not exportable. Such material is never derived: derived KmsKeys came after
    records."""
    meta, labels, notes = key["metadata"], m.labels_of(secret), m.annotations_of(secret)
    ns, name = meta["namespace"], meta["name"]
    owner_ns = labels.get(m.OWNER_NAMESPACE)
    orphaned = m.ORPHANED in labels
    reported = (key.get("status") or {}).get("keyId") == key_id
    current = m.owned_by(secret, ns, name) and not orphaned and reported
    if not current and not (adopted and orphaned and owner_ns == ns):
        raise _refused(key_id, ns)
    try:
        usage_now = KeyUsage(notes.get(m.KEY_USAGE) or usage.value)
        alg_now = Algorithm(notes.get(m.ALGORITHM) or alg.value)
    except ValueError as e:
        unknown = f"Secret {m.secret_name(key_id)} names an unknown usage or algorithm"
        raise Degraded("SecretInvalid", unknown) from e
    exportable = bool((key.get("spec") or {}).get("exportable", False)) if current else False
    return OwnerRecord(
        key_id=key_id, namespace=owner_ns or ns, name=labels.get(m.OWNER_NAME) or name, uid="legacy",
        usage=usage_now, algorithm=alg_now, exportable=exportable,
    )


def _refused(key_id: str, ns: str) -> Degraded:
    return Degraded("AdoptionRefused", f"key {key_id} cannot be adopted in namespace {ns}: {ADOPTION_RULE}")


def derivation(key: dict[str, Any]) -> tuple[bool, bool]:
    """(derived, convergentEncryption) as the KmsKey's spec states them (absent: false)."""
    spec = key.get("spec") or {}
    return bool(spec.get("derived", False)), bool(spec.get("convergentEncryption", False))


def _check_attributes(
    record: OwnerRecord, usage: KeyUsage, alg: Algorithm, exportable: bool, derived: bool, convergent: bool
) -> None:
    for field, wanted, fixed in (
        ("keyUsage", usage.value, record.usage.value),
        ("algorithm", alg.value, record.algorithm.value),
        ("exportable", exportable, record.exportable),
        ("derived", derived, record.derived),
        ("convergentEncryption", convergent, record.convergent),
    ):
        if wanted != fixed:
            raise Degraded(
                "AttributeMismatch",
                f"spec.{field} is {str(wanted).lower() if isinstance(wanted, bool) else wanted} but key "
                f"{record.key_id} was created with {field} "
                f"{str(fixed).lower() if isinstance(fixed, bool) else fixed}; "
                "these attributes are fixed when the material is minted",
            )


async def _owner_present(rt: Runtime, record: OwnerRecord) -> bool:
    """The recorded KmsKey still exists (being deleted counts: its finalizer still acts on the
    material, so the material changes hands only after it is gone)."""
    owner = await rt.api.get_or_none(kmskey_path(record.namespace, record.name))
    return owner is not None and owner["metadata"].get("uid") == record.uid


async def _take(
    rt: Runtime, key: dict[str, Any], secret: dict[str, Any], record: OwnerRecord
) -> dict[str, Any]:
    """Write `record` (the new owner) into the Secret in one resourceVersion-guarded patch, with
    the owner labels as hints; the orphaned label and a transfer mark are removed."""
    sealed = await asyncio.to_thread(seal_record, record, rt.sealer)
    labels, notes = m.labels_of(secret), m.annotations_of(secret)
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": secret["metadata"]["resourceVersion"]},
        set_label(m.OWNER_NAMESPACE, record.namespace),
        set_label(m.OWNER_NAME, record.name),
    ]
    if notes:
        at = f"/metadata/annotations/{escape(OWNER_RECORD_ANNOTATION)}"
        ops.append({"op": "add", "path": at, "value": sealed})
    else:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {OWNER_RECORD_ANNOTATION: sealed}})
    if m.ORPHANED in labels:
        ops.append({"op": "remove", "path": f"/metadata/labels/{escape(m.ORPHANED)}"})
    ops += _undelete(labels, notes)
    if TRANSFER_ANNOTATION in notes:
        ops.append({"op": "remove", "path": f"/metadata/annotations/{escape(TRANSFER_ANNOTATION)}"})
    path = secrets_path(rt.settings.namespace, m.secret_name(record.key_id))
    taken = await rt.api.json_patch(path, ops)
    recorded_only = OWNER_RECORD_ANNOTATION not in notes and m.owned_by(secret, record.namespace, record.name)
    if recorded_only and m.ORPHANED not in labels:
        await events.info(key, "OwnerRecorded", f"Recorded this KmsKey as the owner of key {record.key_id}")
    else:
        await events.info(key, "MaterialAdopted", f"Adopted existing material of key {record.key_id}")
    return taken


async def _sync_hints(rt: Runtime, secret: dict[str, Any], key_id: str, ns: str, name: str) -> dict[str, Any]:
    """The recorded owner uses its material: make the labels (hints for watches and people) say so."""
    labels = m.labels_of(secret)
    if m.owned_by(secret, ns, name) and m.ORPHANED not in labels and m.DELETED not in labels:
        return secret
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": secret["metadata"]["resourceVersion"]},
        set_label(m.OWNER_NAMESPACE, ns),
        set_label(m.OWNER_NAME, name),
    ]
    if m.ORPHANED in labels:
        ops.append({"op": "remove", "path": f"/metadata/labels/{escape(m.ORPHANED)}"})
    ops += _undelete(labels, m.annotations_of(secret))
    return await rt.api.json_patch(secrets_path(rt.settings.namespace, m.secret_name(key_id)), ops)


def _undelete(labels: dict[str, str], notes: dict[str, str]) -> list[dict[str, Any]]:
    """The ops that cancel a pending purge (a deleted key restored within its window): in the
    same resourceVersion-guarded patch as the adoption, so the purge's precondition fails."""
    ops: list[dict[str, Any]] = []
    if m.DELETED in labels:
        ops.append({"op": "remove", "path": f"/metadata/labels/{escape(m.DELETED)}"})
    if m.PURGE_AT in notes:
        ops.append({"op": "remove", "path": f"/metadata/annotations/{escape(m.PURGE_AT)}"})
    return ops
