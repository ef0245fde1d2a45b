"""SIGKILL the operator between any two of its writes; after a restart a key has one material, ever.

The emulator holds (slow) or refuses (fail) one kind of request so the kill lands exactly between
two steps: keyId persisted / Secret written / status written / rotation written.
"""

from __future__ import annotations

from collections.abc import Callable

from fixtures.kube import OperatorProcess
from kube import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.kmskeys import kmskey, material_secrets, secret_of, unseal_all, wait_ready

SECRETS_COLLECTION = f"/namespaces/{KUBEKMS_NAMESPACE}/secrets$"


def data_versions(cluster: Cluster, name: str) -> list[dict[str, str]]:
    """The distinct `data` contents a Secret has ever had, in order."""
    seen: list[dict[str, str]] = []
    for version in cluster.history(SECRETS, KUBEKMS_NAMESPACE, name):
        if version is not None and (not seen or seen[-1] != version.get("data")):
            seen.append(dict(version.get("data") or {}))
    return seen


def test_killed_after_the_secret_write_before_status(
    kube_cluster: Cluster,
    kube_operator: OperatorProcess,
    kube_operator_factory: Callable[..., OperatorProcess],
    kube_root_key: str,
) -> None:
    kube_cluster.slow(60, delay=2, path=SECRETS_COLLECTION, method="POST")
    kube_cluster.create(KMSKEYS, kmskey("crash1"), "default")
    kube_cluster.wait_for(lambda: any(h.startswith("POST") for h in kube_cluster.fault_hits), 30)
    kube_operator.kill()  # the Secret create is in flight; the server completes it after the kill
    kube_cluster.heal()
    kube_cluster.wait_for(lambda: len(material_secrets(kube_cluster)) == 1, 10)
    key = kube_cluster.get(KMSKEYS, "default", "crash1")
    assert key is not None and key["status"]["keyId"] and "version" not in key["status"]

    kube_operator_factory().start()
    ready = wait_ready(kube_cluster, "crash1")
    assert ready["status"]["keyId"] == key["status"]["keyId"]
    secrets = material_secrets(kube_cluster)
    assert [s["metadata"]["name"] for s in secrets] == [f"kmskey-{key['status']['keyId']}"]
    assert len(data_versions(kube_cluster, secrets[0]["metadata"]["name"])) == 1, "material never replaced"
    assert list(unseal_all(kube_root_key, ready, secrets[0])) == [1]


def test_killed_after_the_key_id_before_any_secret(
    kube_cluster: Cluster,
    kube_operator: OperatorProcess,
    kube_operator_factory: Callable[..., OperatorProcess],
) -> None:
    kube_cluster.fail(60, path=SECRETS_COLLECTION, method="POST")
    kube_cluster.create(KMSKEYS, kmskey("crash2"), "default")
    kube_cluster.wait_for(lambda: any(h.startswith("POST") for h in kube_cluster.fault_hits), 30)
    kube_operator.kill()
    kube_cluster.heal()
    key_id = kube_cluster.get(KMSKEYS, "default", "crash2")["status"]["keyId"]  # type: ignore[index]
    assert material_secrets(kube_cluster) == []

    kube_operator_factory().start()
    ready = wait_ready(kube_cluster, "crash2")
    assert ready["status"]["keyId"] == key_id, "the keyId decided before the crash is kept"
    assert [s["metadata"]["name"] for s in material_secrets(kube_cluster)] == [f"kmskey-{key_id}"]


def test_killed_mid_rotation(
    kube_cluster: Cluster,
    kube_operator: OperatorProcess,
    kube_operator_factory: Callable[..., OperatorProcess],
    kube_root_key: str,
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("crash3"), "default")
    key = wait_ready(kube_cluster, "crash3")
    secret_name = key["status"]["secretName"]
    kube_cluster.slow(60, delay=2, path=f"/secrets/{secret_name}$", method="PATCH")
    kube_cluster.patch(
        KMSKEYS, "default", "crash3", {"metadata": {"annotations": {"kubekms.io/rotate": "now"}}}
    )
    kube_cluster.wait_for(lambda: any(h.startswith("PATCH") for h in kube_cluster.fault_hits), 30)
    kube_operator.kill()  # version 2 lands in the Secret after the kill; status still says 1
    kube_cluster.heal()
    kube_cluster.wait_for(
        lambda: (
            "version-2" in (kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, secret_name) or {}).get("data", {})
        ),
        10,
    )
    assert kube_cluster.get(KMSKEYS, "default", "crash3")["status"]["version"] == 1  # type: ignore[index]

    kube_operator_factory().start()
    rotated = wait_ready(kube_cluster, "crash3", version=2)
    assert rotated["status"]["rotation"] == "now"
    secret = secret_of(kube_cluster, rotated)
    assert secret is not None and sorted(unseal_all(kube_root_key, rotated, secret)) == [1, 2]
    assert [sorted(d) for d in data_versions(kube_cluster, secret_name)] == [
        ["version-1"],
        ["version-1", "version-2"],
    ]
