"""The KmsKey custom resource and its key-material Secret, as the API reads and writes them.

The layout (paths, labels, annotations, `version-<n>` entries) is kms_kube.layout, shared with the
operator; this module maps KmsKey objects to the Infisical key model and back. Security property: this
module only maps records; the Secret's blobs are sealed and stay opaque here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kms_core.model import Key, KeySpec, KeyVersion

__all__ = [
    "API_VERSION", "DELETE_PROTECTION_ANNOTATION", "GROUP", "KEY_ID_LABEL", "KIND", "PLURAL",
    "ROTATE_ANNOTATION", "UPDATED_ANNOTATION", "VERSION", "is_live", "is_protected", "is_ready", "key_id",
    "kmskeys_path",
    "manifest", "owner", "secret_key_id", "secret_name", "secrets_path", "to_key", "to_versions", "version",
]
from kms_core.ownership import OwnerRecord
from kms_kube import layout
from kms_kube.client import JsonDict
from kms_kube.layout import API_VERSION, GROUP, KIND, PLURAL, VERSION, kmskeys_path, secret_name, secrets_path
from kms_kube.layout import DELETE_PROTECTION as DELETE_PROTECTION_ANNOTATION
from kms_kube.layout import KEY_ID as KEY_ID_LABEL
from kms_kube.layout import ROTATE as ROTATE_ANNOTATION
from kms_kube.layout import UPDATED as UPDATED_ANNOTATION
from kms_kube.layout import key_id_of as secret_key_id
from kms_kube.layout import owner_of as owner

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def manifest(spec: KeySpec, now: datetime) -> JsonDict:
    """A new KmsKey for `spec`. keyId is left to the operator, which mints it with the material."""
    annotations = {UPDATED_ANNOTATION: iso(now)}
    if spec.has_delete_protection:
        annotations[DELETE_PROTECTION_ANNOTATION] = "true"
    body: JsonDict = {
        "keyUsage": str(spec.key_usage),
        "algorithm": str(spec.algorithm),
        "disabled": False,
        "exportable": spec.is_exportable,
    }
    if spec.description is not None:
        body["description"] = spec.description
    if spec.derived:  # written only when set: a plain key's KmsKey is what it always was
        body["derived"] = True
        body["convergentEncryption"] = spec.convergent_encryption
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": spec.name, "namespace": spec.project_id, "annotations": annotations},
        "spec": body,
    }


def key_id(obj: JsonDict) -> str | None:
    """The keyId the operator reported; None until the material exists."""
    value = (obj.get("status") or {}).get("keyId")
    return str(value) if value else None


def is_live(obj: JsonDict) -> bool:
    """Has material (keyId and a version) and is not being deleted."""
    meta = obj.get("metadata") or {}
    return key_id(obj) is not None and version(obj) >= 1 and not meta.get("deletionTimestamp")


def version(obj: JsonDict) -> int:
    value = (obj.get("status") or {}).get("version")
    return value if isinstance(value, int) else 0


def condition(obj: JsonDict, kind: str) -> JsonDict | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(obj: JsonDict) -> bool:
    cond = condition(obj, "Ready")
    return is_live(obj) and cond is not None and cond.get("status") == "True"


def is_protected(obj: JsonDict) -> bool:
    """Delete protection: the API's annotation, or `spec.deletionAllowed: false` (one flag, as
    Vault's deletion_allowed is the inverse of Infisical's hasDeleteProtection)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    spec = obj.get("spec") or {}
    return annotations.get(DELETE_PROTECTION_ANNOTATION) == "true" or spec.get("deletionAllowed") is False


def to_key(obj: JsonDict, org_id: str, record: OwnerRecord) -> Key:
    """The Infisical view of a live KmsKey: id = status.keyId, projectId = namespace. Usage,
    algorithm, exportability and derivation (Transit's `derived`, `convergent_encryption`) come
    from the material's owner record, never from the spec; the
    rotation period and version bounds are the policy the operator put in force
    (`status.policy`), so the API enforces exactly what the operator accepted."""
    meta: dict[str, Any] = obj.get("metadata") or {}
    spec: dict[str, Any] = obj.get("spec") or {}
    status: dict[str, Any] = obj.get("status") or {}
    annotations: dict[str, str] = meta.get("annotations") or {}
    created = layout.parse_time(meta.get("creationTimestamp")) or _EPOCH
    updated = layout.parse_time(annotations.get(UPDATED_ANNOTATION)) or created
    description = spec.get("description")
    policy = layout.Policy.of_status(status)
    return Key(
        id=str(key_id(obj)),
        name=str(meta.get("name")),
        description=description if description else None,
        is_disabled=bool(spec.get("disabled", False)),
        org_id=org_id,
        project_id=str(meta.get("namespace")),
        key_usage=record.usage,
        algorithm=record.algorithm,
        version=version(obj),
        is_exportable=record.exportable,
        has_delete_protection=is_protected(obj),
        created_at=created,
        updated_at=max(updated, created),
        rotation_period=policy.rotation_period,
        min_decryption_version=policy.min_decryption_version,
        min_encryption_version=policy.min_encryption_version,
        min_available_version=policy.min_available_version,
        rotated_at=layout.parse_time(status.get("lastRotationTime")),
        derived=record.derived,
        convergent_encryption=record.convergent,
    )


def to_versions(secret: JsonDict, key: str) -> list[KeyVersion]:
    """The sealed versions in a key Secret, newest first (malformed entries skipped, see layout),
    with the creation time the operator recorded for each."""
    times = layout.version_times(secret)
    found = [
        KeyVersion(key_id=key, version=v, sealed=sealed, created_at=times.get(v, _EPOCH))
        for v, sealed in layout.versions(secret).items()
    ]
    found.sort(key=lambda v: v.version, reverse=True)
    return found


def iso(when: datetime) -> str:
    """JavaScript `Date.toJSON()` style, as the API prints dates."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


