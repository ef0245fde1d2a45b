"""The operator restarts cleanly: existing keys keep working and new keys still get material."""

from __future__ import annotations

from kindsuite import NAMESPACE, RELEASE, Api, apply_key, kubectl, wait_ready


def test_operator_restart(admin: Api, tenant: str) -> None:
    key = admin.create_key(tenant, "restart-key")
    wait_ready(tenant, "restart-key")
    before = admin.encrypt(key["id"], b"survives a restart")

    deployment = f"deploy/{RELEASE}-operator"
    kubectl("rollout", "restart", deployment, "-n", NAMESPACE)
    kubectl("rollout", "status", deployment, "-n", NAMESPACE, "--timeout=180s")

    apply_key(tenant, "after-restart")
    status = wait_ready(tenant, "after-restart")["status"]
    assert status["version"] == 1
    # Material is never regenerated for an existing key: the old ciphertext still decrypts.
    assert admin.decrypt(key["id"], before) == b"survives a restart"
    assert wait_ready(tenant, "restart-key")["status"]["keyId"] == key["id"]
