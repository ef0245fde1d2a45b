"""A KmsKey declared with kubectl becomes Ready with sealed material in the KubeKMS namespace,
and deleting it (deletionPolicy Retain) keeps that material."""

from __future__ import annotations

from kindsuite import NAMESPACE, apply_key, kubectl, kubectl_json, wait_for, wait_ready


def test_kmskey_becomes_ready_with_sealed_material(tenant: str) -> None:
    apply_key(tenant, "lifecycle-aes")
    key = wait_ready(tenant, "lifecycle-aes")
    status = key["status"]
    assert status["version"] == 1
    assert status["secretName"] == f"kmskey-{status['keyId']}"
    secret = kubectl_json("get", "secret", status["secretName"], "-n", NAMESPACE)
    assert secret["data"], "the material Secret is empty"
    # No material in the tenant's namespace: tenants never need Secret access.
    assert kubectl("get", "secret", status["secretName"], "-n", tenant, check=False).returncode != 0
    columns = kubectl("get", "kmsk", "lifecycle-aes", "-n", tenant).stdout.splitlines()[0]
    for column in ("USAGE", "ALGORITHM", "VERSION", "READY", "AGE"):
        assert column in columns


def test_sign_verify_key_publishes_its_public_key(tenant: str) -> None:
    apply_key(tenant, "lifecycle-ec", usage="sign-verify", algorithm="ECC_NIST_P256")
    status = wait_ready(tenant, "lifecycle-ec")["status"]
    assert status["publicKey"]


def test_immutable_fields_are_refused(tenant: str) -> None:
    wait_ready(tenant, "lifecycle-aes")
    result = kubectl("patch", "kmskey", "lifecycle-aes", "-n", tenant, "--type=merge",
                     "-p", '{"spec": {"algorithm": "aes-128-gcm"}}', check=False)
    assert result.returncode != 0 and "immutable" in result.stderr.lower()


def test_deleting_a_retained_key_keeps_its_material(tenant: str) -> None:
    apply_key(tenant, "lifecycle-delete")
    secret_name = wait_ready(tenant, "lifecycle-delete")["status"]["secretName"]
    kubectl("delete", "kmskey", "lifecycle-delete", "-n", tenant, "--wait=true", "--timeout=120s")
    wait_for("KmsKey gone", lambda: kubectl("get", "kmskey", "lifecycle-delete", "-n", tenant,
                                            check=False).returncode != 0)
    assert kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)["data"]
