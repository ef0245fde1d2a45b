"""The key material Secret: its name, labels, annotations and `version-<n>` data entries.

Layout (shared with the API's Kubernetes store):
- name `kmskey-<keyId>` in the KubeKMS namespace;
- labels `kubekms.io/key-id`, `kubekms.io/owner-namespace`, `kubekms.io/owner-name`
  (and `kubekms.io/orphaned: "true"` once its KmsKey was deleted with deletionPolicy Retain);
- annotation `kubekms.io/owner-record`: the sealed owner record (kms_core.ownership), the only
  authority on which KmsKey owns the material and on its usage, algorithm and exportability
  (the owner labels are hints for watches and people);
- annotations `kubekms.io/kek-id` (the sealer that sealed every version), `kubekms.io/algorithm`,
  `kubekms.io/key-usage`, `kubekms.io/rotation` (the rotate request that produced the newest
  version: the guard against performing one request twice);
- data `version-1`, `version-2`, ... = base64 of each version's sealed blob.

Security property: only sealed blobs are ever placed here; unsealed material never is.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from kms_core.ownership import OWNER_RECORD_ANNOTATION

KEY_ID = "kubekms.io/key-id"
OWNER_NAMESPACE = "kubekms.io/owner-namespace"
OWNER_NAME = "kubekms.io/owner-name"
ORPHANED = "kubekms.io/orphaned"
KEK_ID = "kubekms.io/kek-id"
ALGORITHM = "kubekms.io/algorithm"
KEY_USAGE = "kubekms.io/key-usage"
ROTATION = "kubekms.io/rotation"
ORPHANED_AT = "kubekms.io/orphaned-at"
ROTATE = "kubekms.io/rotate"  # on the KmsKey: any new value requests one rotation
MANAGED_BY = ("app.kubernetes.io/managed-by", "kubekms-operator")

_VERSION = re.compile(r"^version-([1-9][0-9]*)$")


def secret_name(key_id: str) -> str:
    return f"kmskey-{key_id}"


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
) -> dict[str, Any]:
    """A new material Secret holding version 1 and its sealed owner record."""
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
            "annotations": {
                KEK_ID: kek_id, ALGORITHM: algorithm, KEY_USAGE: key_usage, OWNER_RECORD_ANNOTATION: record,
            },
        },
        "data": {version_key(1): base64.b64encode(sealed).decode()},
    }


def versions(secret_body: Mapping[str, Any]) -> dict[int, bytes]:
    """The sealed blob of every `version-<n>` entry (ignoring anything else in the Secret)."""
    found: dict[int, bytes] = {}
    for key, value in (secret_body.get("data") or {}).items():
        match = _VERSION.match(key)
        if match and isinstance(value, str):
            found[int(match.group(1))] = base64.b64decode(value)
    return found


def labels_of(body: Mapping[str, Any]) -> dict[str, str]:
    return dict(body.get("metadata", {}).get("labels") or {})


def annotations_of(body: Mapping[str, Any]) -> dict[str, str]:
    return dict(body.get("metadata", {}).get("annotations") or {})


def owned_by(secret_body: Mapping[str, Any], namespace: str, name: str) -> bool:
    lab = labels_of(secret_body)
    return lab.get(OWNER_NAMESPACE) == namespace and lab.get(OWNER_NAME) == name
