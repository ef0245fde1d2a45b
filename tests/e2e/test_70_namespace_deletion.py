"""Deleting a tenant namespace that holds KmsKeys while the operator runs converges: the
namespace goes away (the operator releases each key's finalizer) and the material is kept
(deletionPolicy Retain), orphaned, in the KubeKMS namespace. Only a real API server runs the
namespace-deletion cascade."""

from __future__ import annotations

from kindsuite import NAMESPACE, apply_key, kubectl, kubectl_json, wait_for, wait_ready

DOOMED = "e2e-doomed"


def test_deleting_a_namespace_with_kmskeys_converges(tenant: str) -> None:
    kubectl("create", "namespace", DOOMED, check=False)
    apply_key(DOOMED, "doomed-aes")
    secret_name = wait_ready(DOOMED, "doomed-aes")["status"]["secretName"]
    kubectl("delete", "namespace", DOOMED, "--wait=false")
    wait_for("namespace gone", lambda: kubectl("get", "namespace", DOOMED, check=False).returncode != 0,
             timeout=180)
    secret = kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)
    assert secret["metadata"]["labels"].get("kubekms.io/orphaned") == "true"
    assert secret["data"], "the material of a deleted namespace's key must be kept (Retain)"
