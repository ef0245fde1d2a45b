"""Deleting a tenant namespace that holds KmsKeys while the operator runs converges: every KmsKey
is released as its deletionPolicy says and the namespace goes away. First the emulator is shown
to delete namespaces as kube-apiserver and the namespace controller do."""

from __future__ import annotations

import pytest

from fixtures.kube import KUBEKMS_NAMESPACE, OperatorProcess
from kube import KMSKEYS, NAMESPACES, SECRETS, Cluster
from kube.compat import ApiError
from kube.kmskeys import kmskey, wait_ready


def test_the_emulator_terminates_a_namespace_like_a_real_cluster(kube_cluster: Cluster) -> None:
    kube_cluster.ensure_namespace("doomed")
    kube_cluster.create(KMSKEYS, {**kmskey("held"), "metadata": {"name": "held", "finalizers": ["x/y"]}},
                        "doomed")
    kube_cluster.create(KMSKEYS, kmskey("free"), "doomed")
    kube_cluster.delete(NAMESPACES, None, "doomed")
    ns = kube_cluster.get(NAMESPACES, None, "doomed")
    assert ns is not None and ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as refused:
        kube_cluster.create(KMSKEYS, kmskey("late"), "doomed")
    assert refused.value.code == 403 and "being terminated" in refused.value.message
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "doomed", "free") is None, 10)
    held = kube_cluster.get(KMSKEYS, "doomed", "held")
    assert held is not None and held["metadata"]["deletionTimestamp"]  # waits for its finalizer
    assert kube_cluster.get(NAMESPACES, None, "doomed") is not None
    kube_cluster.patch(KMSKEYS, "doomed", "held", {"metadata": {"finalizers": None}})
    kube_cluster.wait_for(lambda: kube_cluster.get(NAMESPACES, None, "doomed") is None, 10)


def test_deleting_a_namespace_with_kmskeys_converges(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    kube_cluster.ensure_namespace("doomed")
    kube_cluster.create(KMSKEYS, kmskey("kept"), "doomed")
    kube_cluster.create(KMSKEYS, kmskey("shredded", deletionPolicy="Delete"), "doomed")
    kept = wait_ready(kube_cluster, "kept", "doomed")["status"]["secretName"]
    shredded = wait_ready(kube_cluster, "shredded", "doomed")["status"]["secretName"]
    kube_cluster.delete(NAMESPACES, None, "doomed")
    kube_cluster.wait_for(lambda: kube_cluster.get(NAMESPACES, None, "doomed") is None, 30,
                          message="the namespace did not go away")
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, kept)
    assert secret is not None and secret["metadata"]["labels"]["kubekms.io/orphaned"] == "true"
    # deletionPolicy Delete: kept for the recovery window, marked for purging.
    marked = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, shredded)
    assert marked is not None and marked["metadata"]["labels"]["kubekms.io/deleted"] == "true"
    assert "kubekms.io/purge-at" in marked["metadata"]["annotations"]
    assert kube_operator.running
