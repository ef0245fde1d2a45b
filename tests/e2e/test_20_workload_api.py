"""Workloads call the API with their ServiceAccount token; Kubernetes RBAC decides what they may do."""

from __future__ import annotations

import secrets

from kindsuite import TENANT, Api, kubectl, kubectl_json, service_account, wait_ready


def test_admin_creates_a_key_and_round_trips(admin: Api, tenant: str) -> None:
    key = admin.create_key(tenant, "workload-key", description="created by a workload")
    assert key["projectId"] == tenant and key["name"] == "workload-key" and key["version"] == 1
    # The API writes a KmsKey object; the operator makes its material.
    obj = wait_ready(tenant, "workload-key")
    assert obj["status"]["keyId"] == key["id"]
    plaintext = secrets.token_bytes(64)
    ciphertext = admin.encrypt(key["id"], plaintext)
    assert admin.decrypt(key["id"], ciphertext) == plaintext
    listed = admin.ok("GET", f"/api/v1/kms/keys?projectId={tenant}")
    assert "workload-key" in {k["name"] for k in listed["keys"]}


def test_missing_token_is_401() -> None:
    status, payload = Api(None).call("GET", f"/api/v1/kms/keys?projectId={TENANT}")
    assert status == 401 and payload["message"] == "Token missing"


def test_invalid_token_is_403() -> None:
    status, _ = Api("not-a-token").call("GET", f"/api/v1/kms/keys?projectId={TENANT}")
    assert status == 403


def test_a_token_for_the_kubernetes_api_is_not_a_kubekms_credential(admin: Api, tenant: str) -> None:
    """Only tokens projected for the chart's audience are accepted, whatever the RBAC binding."""
    service_account(tenant, "app-default-token", "kubekms-admin")
    default = kubectl("create", "token", "app-default-token", "-n", tenant, "--duration=10m").stdout.strip()
    status, payload = Api(default).call("GET", f"/api/v1/kms/keys?projectId={tenant}")
    assert status == 403 and payload["error"] == "TokenError"


def test_rbac_denies_what_the_role_does_not_grant(admin: Api, tenant: str) -> None:
    key = admin.create_key(tenant, "rbac-key")
    wait_ready(tenant, "rbac-key")
    ciphertext = admin.encrypt(key["id"], b"secret")

    nobody = service_account(tenant, "app-nobody", None)
    status, _ = nobody.call("POST", f"/api/v1/kms/keys/{key['id']}/decrypt", {"ciphertext": ciphertext})
    assert status == 403

    viewer = service_account(tenant, "app-viewer", "kubekms-viewer")
    assert viewer.ok("GET", f"/api/v1/kms/keys/{key['id']}")["key"]["id"] == key["id"]
    status, _ = viewer.call("POST", f"/api/v1/kms/keys/{key['id']}/decrypt", {"ciphertext": ciphertext})
    assert status == 403

    operator = service_account(tenant, "app-crypto", "kubekms-cryptographic-operator")
    assert operator.decrypt(key["id"], ciphertext) == b"secret"
    status, _ = operator.call("DELETE", f"/api/v1/kms/keys/{key['id']}")
    assert status == 403

    # An admin of another namespace has no rights on this namespace's keys.
    kubectl("create", "namespace", "e2e-other", check=False)
    stranger = service_account("e2e-other", "app-admin", "kubekms-admin")
    status, _ = stranger.call("POST", f"/api/v1/kms/keys/{key['id']}/decrypt", {"ciphertext": ciphertext})
    assert status == 403


def test_api_service_account_cannot_read_secrets_elsewhere() -> None:
    allowed = kubectl("auth", "can-i", "get", "secrets", "-n", TENANT,
                      "--as=system:serviceaccount:kubekms:kubekms-api", check=False)
    assert allowed.stdout.strip() == "no"
    pods = kubectl_json("get", "pods", "-n", "kubekms", "-l", "app.kubernetes.io/component=api")
    assert len(pods["items"]) >= 2
