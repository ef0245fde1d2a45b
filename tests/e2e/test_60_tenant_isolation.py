"""Tenant against tenant on a real API server: a KmsKey in another namespace that names a
tenant's keyId never gets the material, before or after the owner's deletion, and deleting it
with deletionPolicy Delete leaves the material alone. The emulator suite
(tests/integration/test_tenant_isolation.py) covers every variant; this one shows the real
admission chain (CEL, status subresource, UIDs) agrees."""

from __future__ import annotations

import json

from kindsuite import NAMESPACE, apply_key, kubectl, kubectl_json, wait_for, wait_ready

SQUATTER = "e2e-squatter"

def degraded_reason(namespace: str, name: str) -> str | None:
    obj = kubectl_json("get", "kmskey", name, "-n", namespace)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Degraded" and cond.get("status") == "True":
            return str(cond.get("reason"))
    return None


def test_another_namespace_cannot_adopt_a_tenants_material(tenant: str) -> None:
    kubectl("create", "namespace", SQUATTER, check=False)
    apply_key(tenant, "isolation-victim")
    status = wait_ready(tenant, "isolation-victim")["status"]
    key_id, secret_name = status["keyId"], status["secretName"]
    squat = {
        "apiVersion": "kubekms.io/v1alpha1", "kind": "KmsKey",
        "metadata": {"name": "squat", "namespace": SQUATTER},
        "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm", "keyId": key_id,
                 "deletionPolicy": "Delete"},
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(squat))
    wait_for("squatter refused", lambda: degraded_reason(SQUATTER, "squat") == "AdoptionRefused")

    kubectl("delete", "kmskey", "isolation-victim", "-n", tenant, "--wait=true", "--timeout=120s")
    labels = lambda: kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)["metadata"]["labels"]  # noqa: E731
    wait_for("material orphaned", lambda: labels().get("kubekms.io/orphaned") == "true")
    assert degraded_reason(SQUATTER, "squat") == "AdoptionRefused"
    kubectl("delete", "kmskey", "squat", "-n", SQUATTER, "--wait=true", "--timeout=120s")
    assert kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)["data"]
    kubectl("delete", "namespace", SQUATTER, "--wait=false", check=False)
