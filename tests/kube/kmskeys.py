"""Helpers for KmsKey tests (operator and API): create keys, wait for conditions, unseal Secrets."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from kms_core import material
from kms_core.model import Algorithm, KeyUsage
from kms_core.ownership import OwnerRecord, seal_record
from kms_core.sealing.base import Sealer
from kms_core.sealing.rootkey import RootKeySealer
from kube.cluster import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster


def kmskey(
    name: str, usage: str = "encrypt-decrypt", algorithm: str = "aes-256-gcm", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": "KmsKey",
        "metadata": {"name": name},
        "spec": {"keyUsage": usage, "algorithm": algorithm, **spec},
    }


def condition(key: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((key or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def wait_ready(
    cluster: Cluster, name: str, namespace: str = "default", version: int = 1, timeout: float = 30
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        key = cluster.get(KMSKEYS, namespace, name)
        ready = condition(key, "Ready").get("status") == "True"
        return key if key and ready and key["status"].get("version") == version else None

    return cluster.wait_for(
        probe, timeout, message=f"KmsKey {namespace}/{name} not Ready at version {version}"
    )


def wait_degraded(
    cluster: Cluster, name: str, reason: str, namespace: str = "default", timeout: float = 30
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        key = cluster.get(KMSKEYS, namespace, name)
        cond = condition(key, "Degraded")
        return key if cond.get("status") == "True" and cond.get("reason") == reason else None

    return cluster.wait_for(probe, timeout, message=f"KmsKey {namespace}/{name} not Degraded/{reason}")


def secret_of(cluster: Cluster, key: dict[str, Any]) -> dict[str, Any] | None:
    return cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key['status']['keyId']}")


def material_secrets(cluster: Cluster) -> list[dict[str, Any]]:
    return cluster.list(SECRETS, KUBEKMS_NAMESPACE, "kubekms.io/key-id")


def unseal_all(root_key: str, key: dict[str, Any], secret: dict[str, Any]) -> dict[int, bytes]:
    """Every version's material, unsealed with the test's root key (AAD = key id, version, alg)."""
    from kms_kube.layout import versions

    sealer = RootKeySealer.from_base64(root_key)
    alg = Algorithm(key["spec"]["algorithm"])
    key_id = key["status"]["keyId"]
    return {v: material.unseal(key_id, v, alg, blob, sealer) for v, blob in versions(secret).items()}


def reasons(cluster: Cluster, name: str, namespace: str = "default") -> list[str]:
    return [e.get("reason", "") for e in cluster.events(namespace, name)]


def owner_record(
    sealer: Sealer, key: dict[str, Any], key_id: str, *, exportable: bool | None = None
) -> str:
    """The sealed owner record the operator writes for `key` (a KmsKey as the server returned it)."""
    meta, spec = key["metadata"], key.get("spec") or {}
    record = OwnerRecord(
        key_id=key_id, namespace=meta["namespace"], name=meta["name"], uid=meta["uid"],
        usage=KeyUsage(spec.get("keyUsage", "encrypt-decrypt")),
        algorithm=Algorithm(spec.get("algorithm", "aes-256-gcm")),
        exportable=bool(spec.get("exportable", False)) if exportable is None else exportable,
    )
    return seal_record(record, sealer)


def seed_ready_key(
    cluster: Cluster, sealer: Sealer, namespace: str, name: str, *, record: bool = True, **spec: Any
) -> str:
    """A Ready key laid out exactly as the operator leaves it, without running the operator:
    KmsKey + status, and its Secret `kmskey-<keyId>` with a real sealed `version-1` and (unless
    `record` is False, as material from before owner records) its sealed owner record."""
    from kms_kube import layout as manifests

    cluster.ensure_namespace(namespace)
    key_id = str(uuid.uuid4())
    body = kmskey(name, **spec)
    key = cluster.create(KMSKEYS, body, namespace=namespace)
    alg = Algorithm(body["spec"]["algorithm"])
    secret = manifests.secret(
        key_id=key_id, namespace=KUBEKMS_NAMESPACE, owner_namespace=namespace, owner_name=name,
        kek_id=sealer.kek_id, algorithm=alg.value, key_usage=body["spec"]["keyUsage"],
        sealed=material.mint(key_id, 1, alg, sealer), record=owner_record(sealer, key, key_id),
    )
    if not record:
        del secret["metadata"]["annotations"]["kubekms.io/owner-record"]
    cluster.create(SECRETS, secret, namespace=KUBEKMS_NAMESPACE)
    status = {"keyId": key_id, "version": 1, "secretName": f"kmskey-{key_id}",
              "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}
    cluster.patch(KMSKEYS, namespace, name, {"status": status}, subresource="status")
    return key_id


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
