"""Key lifecycle on a real cluster: a KmsKey deleted with deletionPolicy Delete keeps its
material, labelled for purging, for the recovery window; re-creating the KmsKey with its keyId
restores it (old ciphertexts decrypt); a rotation period is accepted by the real API server's
CEL rules and shows up as the next rotation time."""

from __future__ import annotations

from kindsuite import NAMESPACE, Api, kubectl, kubectl_json, wait_for, wait_ready

KEY = """
apiVersion: kubekms.io/v1alpha1
kind: KmsKey
metadata:
  name: {name}
  namespace: {namespace}
spec:
  keyUsage: encrypt-decrypt
  algorithm: aes-256-gcm
  deletionPolicy: Delete
{extra}"""


def _apply(namespace: str, name: str, extra: str = "") -> None:
    kubectl("apply", "-f", "-", stdin=KEY.format(name=name, namespace=namespace, extra=extra))


def test_deleted_key_is_kept_and_restored_by_key_id(admin: Api, tenant: str) -> None:
    _apply(tenant, "recoverable")
    status = wait_ready(tenant, "recoverable")["status"]
    key_id, secret_name = status["keyId"], status["secretName"]
    ciphertext = admin.encrypt(key_id, b"kept through a deletion")

    kubectl("delete", "kmskey", "recoverable", "-n", tenant, "--wait=true")
    secret = kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)
    assert secret["metadata"]["labels"].get("kubekms.io/deleted") == "true"
    assert secret["metadata"]["annotations"].get("kubekms.io/purge-at")
    status_code, _ = admin.call("POST", f"/api/v1/kms/keys/{key_id}/decrypt", {"ciphertext": ciphertext})
    assert status_code == 404, "a deleted key is unusable at once"

    _apply(tenant, "recoverable", f"  keyId: {key_id}\n")
    assert wait_ready(tenant, "recoverable")["status"]["keyId"] == key_id
    assert admin.decrypt(key_id, ciphertext) == b"kept through a deletion"

    def unmarked() -> dict[str, object] | None:
        secret = kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)
        return None if "kubekms.io/deleted" in secret["metadata"].get("labels", {}) else secret

    assert wait_for("deletion marks removed", unmarked)["data"]


def test_rotation_period_is_validated_and_scheduled(tenant: str) -> None:
    refused = kubectl(
        "apply", "-f", "-", check=False,
        stdin=KEY.format(name="too-often", namespace=tenant, extra="  rotationPeriod: 10m\n"),
    )
    assert refused.returncode != 0 and "rotationPeriod" in refused.stderr
    _apply(tenant, "daily", "  rotationPeriod: 24h\n")
    status = wait_ready(tenant, "daily")["status"]
    assert wait_for("next rotation time", lambda: kubectl_json(
        "get", "kmskey", "daily", "-n", tenant)["status"].get("nextRotationTime"))
    assert status["keyId"]
