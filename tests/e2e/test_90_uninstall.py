"""Uninstalling the release keeps the CRD, the KmsKeys, their material and the root key.

Runs last (file order): it removes the release the other tests use.
"""

from __future__ import annotations

from kindsuite import NAMESPACE, RELEASE, helm, kubectl, kubectl_json, wait_ready


def test_uninstall_keeps_crd_keys_and_material(tenant: str) -> None:
    status = wait_ready(tenant, "lifecycle-aes")["status"]
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "5m")

    deployments = kubectl_json("get", "deployments", "-n", NAMESPACE)["items"]
    assert deployments == [], "the release's workloads should be gone"
    assert kubectl("get", "crd", "kmskeys.kubekms.io", check=False).returncode == 0
    kept = kubectl_json("get", "kmskey", "lifecycle-aes", "-n", tenant)
    assert kept["status"]["keyId"] == status["keyId"]
    assert kubectl_json("get", "secret", status["secretName"], "-n", NAMESPACE)["data"]
    root = kubectl_json("get", "secret", f"{RELEASE}-root-key", "-n", NAMESPACE)
    assert root["data"]["ROOT_ENCRYPTION_KEY"]
