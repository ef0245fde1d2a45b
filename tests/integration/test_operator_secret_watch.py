"""The operator notices material Secret changes at once through its Secret watch, not its timer.

Every operator here runs with KUBEKMS_CHECK_INTERVAL=300: the safety-net check never fires during
a test, so each reaction within seconds comes from the watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from fixtures.kube import OperatorProcess
from kube import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.kmskeys import condition, kmskey, material_secrets, reasons, secret_of, wait_degraded, wait_ready

SLOW_TIMER = {"KUBEKMS_CHECK_INTERVAL": "300"}
PROMPTLY = 15.0  # seconds: generous for a loaded machine, still far below the 300 s check interval
SECRETS_COLLECTION = f"/namespaces/{KUBEKMS_NAMESPACE}/secrets$"


@pytest.fixture
def operator(kube_operator_factory: Callable[..., OperatorProcess]) -> OperatorProcess:
    return kube_operator_factory(**SLOW_TIMER).start()


def backup(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret as a backup restores it: the same name, labels, annotations and data."""
    meta = secret["metadata"]
    kept = {k: meta[k] for k in ("name", "labels", "annotations") if k in meta}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": kept, "data": secret["data"]}


def kek_annotation(kek_id: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {"kubekms.io/kek-id": kek_id}}}


def warnings(cluster: Cluster, name: str) -> list[str]:
    return [e["reason"] for e in cluster.events("default", name) if e.get("type") == "Warning"]


def wait_log(op: OperatorProcess, text: str, timeout: float = 10, times: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while op.log().count(text) < times:
        assert time.monotonic() < deadline, f"operator log lacks {text!r}:\n{op.log()[-3000:]}"
        time.sleep(0.1)


def test_deleted_secret_degrades_at_once_and_a_restore_makes_it_ready(
    kube_cluster: Cluster, operator: OperatorProcess
) -> None:
    for name in ("lost", "other", "third"):
        kube_cluster.create(KMSKEYS, kmskey(name), "default")
    key = wait_ready(kube_cluster, "lost")
    wait_ready(kube_cluster, "other")
    wait_ready(kube_cluster, "third")
    assert "changed: checking KmsKey" not in operator.log(), "new keys' Secrets cost no extra checks"
    saved = secret_of(kube_cluster, key)
    assert saved is not None
    secret_name = saved["metadata"]["name"]

    kube_cluster.delete(SECRETS, KUBEKMS_NAMESPACE, secret_name)
    degraded = wait_degraded(kube_cluster, "lost", "SecretMissing", timeout=PROMPTLY)
    assert condition(degraded, "Ready")["status"] == "False"
    assert degraded["status"]["keyId"] == key["status"]["keyId"]
    kube_cluster.wait_for(lambda: warnings(kube_cluster, "lost") == ["SecretMissing"], PROMPTLY)
    assert f"Secret {secret_name}: DELETED" in operator.log()
    time.sleep(1)
    assert len(material_secrets(kube_cluster)) == 2, "no new material for the degraded key"
    history = kube_cluster.history(SECRETS, KUBEKMS_NAMESPACE, secret_name)
    assert history[-1] is None and sum(1 for v in history if v is None) == 1
    assert condition(kube_cluster.get(KMSKEYS, "default", "other"), "Ready")["status"] == "True"

    kube_cluster.create(SECRETS, backup(saved), KUBEKMS_NAMESPACE)  # restored from backup
    restored = wait_ready(kube_cluster, "lost", timeout=PROMPTLY)
    assert restored["status"]["keyId"] == key["status"]["keyId"]
    assert condition(restored, "Degraded")["status"] == "False"
    assert secret_of(kube_cluster, restored)["data"] == saved["data"]  # type: ignore[index]
    assert warnings(kube_cluster, "lost") == ["SecretMissing"]
    assert "MaterialCreated" in reasons(kube_cluster, "lost")


def test_secret_sealed_under_another_kek_degrades_at_once_and_recovers(
    kube_cluster: Cluster, operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("swapped"), "default")
    key = wait_ready(kube_cluster, "swapped")
    secret = secret_of(kube_cluster, key)
    assert secret is not None
    name, kek_id = secret["metadata"]["name"], secret["metadata"]["annotations"]["kubekms.io/kek-id"]
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, name, kek_annotation("0" * 16))
    degraded = wait_degraded(kube_cluster, "swapped", "KekMismatch", timeout=PROMPTLY)
    assert "nothing was written" in condition(degraded, "Degraded")["message"]
    after = secret_of(kube_cluster, key)
    assert after is not None and after["data"] == secret["data"]
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, name, kek_annotation(kek_id))
    wait_ready(kube_cluster, "swapped", timeout=PROMPTLY)
    assert len(material_secrets(kube_cluster)) == 1


def test_the_watch_resumes_after_watches_are_cut(kube_cluster: Cluster, operator: OperatorProcess) -> None:
    kube_cluster.create(KMSKEYS, kmskey("a"), "default")
    kube_cluster.create(KMSKEYS, kmskey("b"), "default")
    a, b = wait_ready(kube_cluster, "a"), wait_ready(kube_cluster, "b")
    wait_log(operator, "Secret watch listed")
    kube_cluster.wait_for(lambda: kube_cluster.open_watches >= 2, 10)  # Kopf's KmsKey watch and ours
    time.sleep(0.5)
    everyone = kube_cluster.open_watches
    for cuts in range(1, 4):
        assert kube_cluster.cut_watches() == everyone
        wait_log(operator, "Secret watch interrupted", times=cuts)
        kube_cluster.wait_for(lambda: kube_cluster.open_watches == everyone, PROMPTLY)
    kube_cluster.delete(SECRETS, KUBEKMS_NAMESPACE, a["status"]["secretName"])
    wait_degraded(kube_cluster, "a", "SecretMissing", timeout=PROMPTLY)
    assert operator.running
    assert operator.log().count("Secret watch listed") == 1, "a cut stream resumes, it does not relist"
    assert operator.log().count(f"Secret {b['status']['secretName']}: ADDED") == 1, "resumed where it was"
    assert condition(kube_cluster.get(KMSKEYS, "default", "b"), "Ready")["status"] == "True"
    assert secret_of(kube_cluster, b) is not None and len(material_secrets(kube_cluster)) == 1


@pytest.mark.parametrize("kube_cluster", [{"log_size": 40}], indirect=True)
def test_a_deletion_missed_while_the_watch_was_down_is_found_by_the_relist(
    kube_cluster: Cluster, operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("gap"), "default")
    key = wait_ready(kube_cluster, "gap")
    kube_cluster.fail(60, status=503, path=SECRETS_COLLECTION, method="GET")  # no list, no watch
    kube_cluster.cut_watches()
    wait_log(operator, "Secret watch interrupted")
    kube_cluster.delete(SECRETS, KUBEKMS_NAMESPACE, key["status"]["secretName"])
    for i in range(60):  # move the server's compaction window past the watch's resourceVersion
        kube_cluster.create(SECRETS, {"metadata": {"name": f"filler-{i}"}}, "default")
    time.sleep(1)
    assert condition(kube_cluster.get(KMSKEYS, "default", "gap"), "Ready")["status"] == "True"
    kube_cluster.heal()
    wait_degraded(kube_cluster, "gap", "SecretMissing", timeout=10)
    assert "resourceVersion expired" in operator.log()
    assert operator.log().count("Secret watch listed") == 2
    assert material_secrets(kube_cluster) == []


def test_lost_or_replaced_versions_degrade_the_key_instead_of_falling_back(
    kube_cluster: Cluster, operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("kept"), "default")
    wait_ready(kube_cluster, "kept")
    kube_cluster.patch(KMSKEYS, "default", "kept", {"metadata": {"annotations": {"kubekms.io/rotate": "r1"}}})
    key = wait_ready(kube_cluster, "kept", version=2)
    secret = secret_of(kube_cluster, key)
    assert secret is not None and {"version-1", "version-2"} <= secret["data"].keys()
    name = secret["metadata"]["name"]

    # The newest version disappears: never serve version 1 in its place.
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, name, {"data": {"version-2": None}})
    degraded = wait_degraded(kube_cluster, "kept", "MaterialMissing", timeout=PROMPTLY)
    assert degraded["status"]["version"] == 2 and "version 2" in condition(degraded, "Degraded")["message"]
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, name, {"data": {"version-2": secret["data"]["version-2"]}})
    wait_ready(kube_cluster, "kept", version=2, timeout=PROMPTLY)

    # The current blob is replaced in place by another (well-formed, wrong) one: it must unseal.
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, name, {"data": {"version-2": secret["data"]["version-1"]}})
    wait_degraded(kube_cluster, "kept", "UnsealFailed", timeout=PROMPTLY)
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, name, {"data": {"version-2": secret["data"]["version-2"]}})
    ready = wait_ready(kube_cluster, "kept", version=2, timeout=PROMPTLY)
    assert ready["status"]["keyId"] == key["status"]["keyId"]
    assert len(material_secrets(kube_cluster)) == 1  # no new material at any point
