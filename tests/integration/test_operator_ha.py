"""Operator high availability (item 6 of issue 12): replicas elect a leader on a Lease.

Real operator processes on the emulated API server: only the Lease holder reconciles; when it is
SIGKILLed, a standby takes the Lease over once it expires and converges every key, including
keys created while no replica led, and no key ever gets a second material. A SIGTERMed leader
hands the Lease back at once. KUBEKMS_LEADER_ELECTION=false runs one replica without a Lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fixtures.kube import OperatorProcess
from kube import KMSKEYS, KUBEKMS_NAMESPACE, LEASES, Cluster
from kube.kmskeys import kmskey, material_secrets, wait_ready

LEASE = "kubekms-operator"


def replica(
    factory: Callable[..., OperatorProcess], name: str, duration: int, renew: float = 1
) -> OperatorProcess:
    return factory(POD_NAME=name, KUBEKMS_LEASE_DURATION=str(duration), KUBEKMS_LEASE_RENEW=str(renew))


def holder(cluster: Cluster) -> str | None:
    lease = cluster.get(LEASES, KUBEKMS_NAMESPACE, LEASE)
    return None if lease is None else lease["spec"].get("holderIdentity")


def standing_by(op: OperatorProcess, timeout: float = 30) -> None:
    op.start(wait_ready=False)
    Cluster.wait_for(lambda: "Standing by" in op.log(), timeout, message=f"no standby:\n{op.log()[-3000:]}")
    assert "KubeKMS operator ready" not in op.log()


def secret_posts(cluster: Cluster) -> int:
    assert cluster.emulator is not None
    path = f"/namespaces/{KUBEKMS_NAMESPACE}/secrets"
    return sum(1 for r in list(cluster.emulator) if r.method.value == "POST" and r.url.path.endswith(path))


def material_once(cluster: Cluster, keys: list[dict[str, Any]]) -> None:
    """One Secret per key, holding version 1 only, whose sealed blob never changed."""
    secrets = {s["metadata"]["name"]: s for s in material_secrets(cluster)}
    assert sorted(secrets) == sorted(f"kmskey-{k['status']['keyId']}" for k in keys)
    for name, secret in secrets.items():
        assert list(secret["data"]) == ["version-1"]
        blobs = {v["data"]["version-1"] for v in cluster.history("v1/secrets", KUBEKMS_NAMESPACE, name) if v}
        assert len(blobs) == 1, f"{name} got more than one material"
    assert secret_posts(cluster) == len(keys)  # no replica ever tried to mint twice


def test_standby_takes_over_after_the_leader_is_killed(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    leader = replica(kube_operator_factory, "op-a", duration=3).start()
    assert holder(kube_cluster) == "op-a"
    standby = replica(kube_operator_factory, "op-b", duration=3)
    standing_by(standby)

    before = [f"before-{i}" for i in range(3)]
    for name in before:
        kube_cluster.create(KMSKEYS, kmskey(name), namespace="default")
    keys = [wait_ready(kube_cluster, name) for name in before]
    assert "Created key material" not in standby.log()  # the standby did no work

    leader.kill()
    killed = time.monotonic()
    after = [f"after-{i}" for i in range(3)]
    for name in after:
        kube_cluster.create(KMSKEYS, kmskey(name), namespace="default")
    kube_cluster.wait_for(lambda: holder(kube_cluster) == "op-b", 20, message=standby.log()[-3000:])
    standby.wait_ready(20)
    taken = time.monotonic() - killed
    # Bounded by the lease duration, one look by the standby (renew) and Kopf's start.
    assert taken < 3 + 1 + 10, taken
    keys += [wait_ready(kube_cluster, name, timeout=30) for name in after]
    assert standby.log().count("Created key material") == len(after)
    material_once(kube_cluster, keys)
    lease = kube_cluster.get(LEASES, KUBEKMS_NAMESPACE, LEASE)
    assert lease is not None and lease["spec"]["leaseTransitions"] == 1
    assert lease["spec"]["leaseDurationSeconds"] == 3


def test_a_stopped_leader_hands_the_lease_over_at_once(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    # A long lease: only the release on SIGTERM can explain a fast takeover.
    leader = replica(kube_operator_factory, "op-a", duration=60).start()
    standby = replica(kube_operator_factory, "op-b", duration=60)
    standing_by(standby)
    kube_cluster.create(KMSKEYS, kmskey("k1"), namespace="default")
    first = wait_ready(kube_cluster, "k1")

    stopped = time.monotonic()
    leader.stop()
    assert leader.proc is not None and leader.proc.returncode == 0
    assert "Released Lease" in leader.log()
    kube_cluster.wait_for(lambda: holder(kube_cluster) == "op-b", 10, message=standby.log()[-3000:])
    assert time.monotonic() - stopped < 10
    standby.wait_ready(20)
    kube_cluster.create(KMSKEYS, kmskey("k2"), namespace="default")
    material_once(kube_cluster, [first, wait_ready(kube_cluster, "k2")])


def test_without_leader_election_no_lease_is_used(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    kube_operator_factory(KUBEKMS_LEADER_ELECTION="false").start()
    kube_cluster.create(KMSKEYS, kmskey("k"), namespace="default")
    wait_ready(kube_cluster, "k")
    assert kube_cluster.get(LEASES, KUBEKMS_NAMESPACE, LEASE) is None
    assert kube_cluster.emulator is not None
    assert not [r for r in list(kube_cluster.emulator) if "/leases" in r.url.path]


def test_a_leader_that_cannot_renew_steps_down(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    leader = replica(kube_operator_factory, "op-a", duration=3).start()
    standby = replica(kube_operator_factory, "op-b", duration=3)
    standing_by(standby)
    # Lease updates fail (e.g. the leader is cut off): it must stop leading before the Lease
    # expires, so that it never works while a standby may already have taken over.
    kube_cluster.fail(6, status=503, path="/leases/", method="PUT")
    assert leader.proc is not None
    leader.proc.wait(timeout=10)
    assert leader.proc.returncode == 1
    assert "Leadership lost: could not renew the Lease" in leader.log()
    kube_cluster.wait_for(lambda: holder(kube_cluster) == "op-b", 20, message=standby.log()[-3000:])
    standby.wait_ready(20)
    kube_cluster.create(KMSKEYS, kmskey("k"), namespace="default")
    wait_ready(kube_cluster, "k")
