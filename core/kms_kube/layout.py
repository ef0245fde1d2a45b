"""How KubeKMS lays keys out in Kubernetes: the KmsKey resource's paths and the material Secret's
name, labels, annotations and `version-<n>` data entries. The one definition both processes use.

KmsKey: `kubekms.io/v1alpha1`, namespaced, plural `kmskeys`; the API records a rotation request in
the annotation `kubekms.io/rotate` and delete protection in `kubekms.io/delete-protection`.

Material Secret:
- name `kmskey-<keyId>` in the KubeKMS namespace;
- labels `kubekms.io/key-id`, `kubekms.io/owner-namespace`, `kubekms.io/owner-name`
  (and `kubekms.io/orphaned: "true"` once its KmsKey was deleted; with deletionPolicy Delete also
  `kubekms.io/deleted: "true"` and the annotation `kubekms.io/purge-at`, the end of the recovery
  window after which the operator deletes the Secret);
- annotation `kubekms.io/owner-record`: the sealed owner record (kms_core.ownership), the only
  authority on which KmsKey owns the material and on its usage, algorithm and exportability
  (the owner labels are hints for watches and people);
- annotations `kubekms.io/kek-id` (the sealer that sealed every version), `kubekms.io/algorithm`,
  `kubekms.io/key-usage`, `kubekms.io/rotation` (the rotate request that produced the newest
  version: the guard against performing one request twice), `kubekms.io/version-created` (JSON
  object: version -> creation time, written in the same patch as the version; the schedule's
  clock), `kubekms.io/min-available-version` (versions below it were trimmed: their entries are
  gone on purpose);
- data `version-1`, `version-2`, ... = base64 of each version's sealed blob.

Security property: only sealed blobs are ever placed here; unsealed material never is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kms_core.errors import BadRequest
from kms_core.lifecycle import format_duration, parse_duration
from kms_core.ownership import OWNER_RECORD_ANNOTATION, TRANSFER_ANNOTATION

GROUP = "kubekms.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "KmsKey"
PLURAL = "kmskeys"
SECRET_PREFIX = "kmskey-"
# Kopf's own bookkeeping annotations on KmsKeys live under a sub-domain: Kopf ignores every
# annotation that shares its storage prefix when diffing, and `kubekms.io/rotate` must stay
# visible to it. The API drops them from its cache (it never reads them).
KOPF_PREFIX = "operator.kubekms.io"

KEY_ID = "kubekms.io/key-id"
OWNER_NAMESPACE = "kubekms.io/owner-namespace"
OWNER_NAME = "kubekms.io/owner-name"
ORPHANED = "kubekms.io/orphaned"
KEK_ID = "kubekms.io/kek-id"
ALGORITHM = "kubekms.io/algorithm"
KEY_USAGE = "kubekms.io/key-usage"
ROTATION = "kubekms.io/rotation"
ORPHANED_AT = "kubekms.io/orphaned-at"
DELETED = "kubekms.io/deleted"  # label: deleted with deletionPolicy Delete, purged at PURGE_AT
PURGE_AT = "kubekms.io/purge-at"
VERSION_CREATED = "kubekms.io/version-created"
MIN_AVAILABLE = "kubekms.io/min-available-version"
ROTATE = "kubekms.io/rotate"  # on the KmsKey: any new value requests one rotation
DELETE_PROTECTION = "kubekms.io/delete-protection"  # on the KmsKey: "true" refuses API deletes
UPDATED = "kubekms.io/updated-at"  # on the KmsKey: the API's updatedAt
OWNER_RECORD = OWNER_RECORD_ANNOTATION
TRANSFER_TO = TRANSFER_ANNOTATION
MANAGED_BY = ("app.kubernetes.io/managed-by", "kubekms-operator")

_VERSION = re.compile(r"^version-([1-9][0-9]*)$")


def kmskeys_path(namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
    """KmsKeys of every namespace, of one namespace, or one KmsKey (optionally a subresource)."""
    base = f"/apis/{GROUP}/{VERSION}"
    if namespace is None:
        return f"{base}/{PLURAL}"
    path = f"{base}/namespaces/{namespace}/{PLURAL}"
    if not name:
        return path
    return f"{path}/{name}/{subresource}" if subresource else f"{path}/{name}"


def kmskey_path(namespace: str, name: str, subresource: str = "") -> str:
    """One KmsKey (or its `status` subresource)."""
    return kmskeys_path(namespace, name, subresource)


def secrets_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{path}/{name}" if name else path


def secret_name(key_id: str) -> str:
    return f"{SECRET_PREFIX}{key_id}"


def version_key(version: int) -> str:
    return f"version-{version}"


def secret(
    *,
    key_id: str,
    namespace: str,
    owner_namespace: str,
    owner_name: str,
    kek_id: str,
    algorithm: str,
    key_usage: str,
    sealed: bytes,
    record: str,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """A new material Secret holding version 1 and its sealed owner record (and version 1's
    creation time, when given: the start of the rotation schedule)."""
    notes = {KEK_ID: kek_id, ALGORITHM: algorithm, KEY_USAGE: key_usage, OWNER_RECORD_ANNOTATION: record}
    if created_at is not None:
        notes[VERSION_CREATED] = version_times_value({1: created_at})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(key_id),
            "namespace": namespace,
            "labels": {
                KEY_ID: key_id,
                OWNER_NAMESPACE: owner_namespace,
                OWNER_NAME: owner_name,
                MANAGED_BY[0]: MANAGED_BY[1],
            },
            "annotations": notes,
        },
        "data": {version_key(1): base64.b64encode(sealed).decode()},
    }


def versions(secret_body: Mapping[str, Any]) -> dict[int, bytes]:
    """The sealed blob of every well-formed `version-<n>` entry. Anything else in the Secret, and
    an entry whose value is not base64, is skipped: the operator then reports the version as
    missing (Degraded) and the API cannot serve it, so a bad entry is never silently used."""
    found: dict[int, bytes] = {}
    for key, value in (secret_body.get("data") or {}).items():
        match = _VERSION.match(key)
        if not match or not isinstance(value, str):
            continue
        try:
            found[int(match.group(1))] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
    return found


def timestamp(when: datetime) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes times."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (a `Z` or an offset); None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def version_times(secret_body: Mapping[str, Any]) -> dict[int, datetime]:
    """When each version was made, from `kubekms.io/version-created`. Versions it does not name
    (material from before the annotation) fall back to the Secret's creation time."""
    created = parse_time((secret_body.get("metadata") or {}).get("creationTimestamp"))
    found: dict[int, datetime] = {}
    try:
        recorded = json.loads(annotations_of(secret_body).get(VERSION_CREATED) or "{}")
    except ValueError:
        recorded = {}
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            when = parse_time(value)
            if str(key).isdigit() and when is not None:
                found[int(key)] = when
    if created is not None:
        for version in versions(secret_body):
            found.setdefault(version, created)
    return found


def version_times_value(times: Mapping[int, datetime]) -> str:
    """The `kubekms.io/version-created` annotation for `times`."""
    return json.dumps({str(v): timestamp(t) for v, t in sorted(times.items())}, separators=(",", ":"))


def min_available(secret_body: Mapping[str, Any]) -> int:
    """The trimming bound recorded in the Secret (0: nothing was trimmed)."""
    value = annotations_of(secret_body).get(MIN_AVAILABLE, "0")
    return int(value) if str(value).isdigit() else 0


def labels_of(body: Mapping[str, Any]) -> dict[str, str]:
    return dict(body.get("metadata", {}).get("labels") or {})


def annotations_of(body: Mapping[str, Any]) -> dict[str, str]:
    return dict(body.get("metadata", {}).get("annotations") or {})


def owned_by(secret_body: Mapping[str, Any], namespace: str, name: str) -> bool:
    lab = labels_of(secret_body)
    return lab.get(OWNER_NAMESPACE) == namespace and lab.get(OWNER_NAME) == name


def key_id_of(secret_body: Mapping[str, Any]) -> str | None:
    """The key id label of a material Secret; None for any other Secret."""
    value = labels_of(secret_body).get(KEY_ID)
    return str(value) if value else None


def owner_of(secret_body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) the owner labels name: a hint for watches, never authority (see
    kms_core.ownership for the sealed record that decides custody)."""
    lab = labels_of(secret_body)
    ns, name = lab.get(OWNER_NAMESPACE), lab.get(OWNER_NAME)
    return (str(ns), str(name)) if ns and name else None


# Annotations on KmsKeys that hold copies of the object for their tools: Kopf's bookkeeping and
# kubectl's client-side apply record (each a JSON copy of the spec or the whole object).
_UNREAD_ANNOTATIONS = (
    f"{KOPF_PREFIX}/", "kopf.zalando.org/", "kubectl.kubernetes.io/last-applied-configuration",
)


def slim_kmskey(obj: dict[str, Any]) -> dict[str, Any]:
    """A KmsKey as the API caches it: without managedFields, Kopf's bookkeeping annotations and
    kubectl's last-applied copy, which the API never reads."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        notes = meta.get("annotations")
        if isinstance(notes, dict):
            for name in [n for n in notes if n.startswith(_UNREAD_ANNOTATIONS)]:
                del notes[name]
    return obj


# -- the lifecycle policy in force (KmsKey status.policy) ----------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """The rotation period (seconds, 0 = never) and version bounds the operator put in force: the
    KmsKey's `status.policy`, which the API enforces (the spec is only what was asked for)."""

    rotation_period: int = 0
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0

    @classmethod
    def of_status(cls, status: Mapping[str, Any] | None) -> Policy:
        """The policy in `status` (defaults for a KmsKey from before policies, or a bad value)."""
        raw = (status or {}).get("policy")
        if not isinstance(raw, Mapping):
            return cls()

        def number(name: str, default: int) -> int:
            value = raw.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default

        period = raw.get("rotationPeriod")
        try:
            seconds = parse_duration(period) if isinstance(period, str) and period else 0
        except BadRequest:
            seconds = 0
        return cls(
            rotation_period=seconds,
            min_decryption_version=max(1, number("minDecryptionVersion", 1)),
            min_encryption_version=number("minEncryptionVersion", 0),
            min_available_version=number("minAvailableVersion", 0),
        )

    def status(self) -> dict[str, Any]:
        """`status.policy` for this policy."""
        body: dict[str, Any] = {
            "minDecryptionVersion": self.min_decryption_version,
            "minEncryptionVersion": self.min_encryption_version,
            "minAvailableVersion": self.min_available_version,
        }
        if self.rotation_period:
            body["rotationPeriod"] = format_duration(self.rotation_period)
        return body
