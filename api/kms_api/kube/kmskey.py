"""The KmsKey custom resource and its key-material Secret, as the API reads and writes them.

Names agreed with the operator: KmsKey `kubekms.io/v1alpha1` (namespaced), Secret `kmskey-<keyId>`
in the KubeKMS namespace with data `version-<n>` = base64(sealed blob). Security property: this
module only maps records; the Secret's blobs are sealed and stay opaque here.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from kms_api.kube.client import JsonDict
from kms_core.model import Key, KeySpec, KeyVersion
from kms_core.ownership import OwnerRecord

GROUP = "kubekms.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "KmsKey"
PLURAL = "kmskeys"
ROTATE_ANNOTATION = "kubekms.io/rotate"
DELETE_PROTECTION_ANNOTATION = "kubekms.io/delete-protection"
UPDATED_ANNOTATION = "kubekms.io/updated-at"
KEY_ID_LABEL = "kubekms.io/key-id"
OWNER_NAMESPACE_LABEL = "kubekms.io/owner-namespace"
OWNER_NAME_LABEL = "kubekms.io/owner-name"
SECRET_PREFIX = "kmskey-"
_VERSION_FIELD = re.compile(r"^version-([1-9][0-9]*)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def kmskeys_path(namespace: str | None = None, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}"
    if namespace is None:
        return f"{base}/{PLURAL}"
    path = f"{base}/namespaces/{namespace}/{PLURAL}"
    return f"{path}/{name}" if name else path


def secrets_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{path}/{name}" if name else path


def secret_name(key_id: str) -> str:
    return f"{SECRET_PREFIX}{key_id}"


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


def to_key(obj: JsonDict, org_id: str, record: OwnerRecord) -> Key:
    """The Infisical view of a live KmsKey: id = status.keyId, projectId = namespace. Usage,
    algorithm and exportability come from the material's owner record, never from the spec."""
    meta: dict[str, Any] = obj.get("metadata") or {}
    spec: dict[str, Any] = obj.get("spec") or {}
    annotations: dict[str, str] = meta.get("annotations") or {}
    created = _parse_time(meta.get("creationTimestamp")) or _EPOCH
    updated = _parse_time(annotations.get(UPDATED_ANNOTATION)) or created
    description = spec.get("description")
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
        has_delete_protection=annotations.get(DELETE_PROTECTION_ANNOTATION) == "true",
        created_at=created,
        updated_at=max(updated, created),
    )


def to_versions(secret: JsonDict, key: str) -> list[KeyVersion]:
    """The sealed versions in a key Secret, newest first. Malformed entries are skipped."""
    created = _parse_time((secret.get("metadata") or {}).get("creationTimestamp")) or _EPOCH
    found: list[KeyVersion] = []
    for field, value in (secret.get("data") or {}).items():
        match = _VERSION_FIELD.match(field)
        if not match or not isinstance(value, str):
            continue
        try:
            sealed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        found.append(KeyVersion(key_id=key, version=int(match.group(1)), sealed=sealed, created_at=created))
    found.sort(key=lambda v: v.version, reverse=True)
    return found


def secret_key_id(secret: JsonDict) -> str | None:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    value = labels.get(KEY_ID_LABEL)
    return str(value) if value else None


def owner(secret: JsonDict) -> tuple[str, str] | None:
    """(namespace, name) of the KmsKey that owns a key Secret, from its labels."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    ns, name = labels.get(OWNER_NAMESPACE_LABEL), labels.get(OWNER_NAME_LABEL)
    return (str(ns), str(name)) if ns and name else None


def iso(when: datetime) -> str:
    """JavaScript `Date.toJSON()` style, as the API prints dates."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
