"""Operator HA on a real cluster: two replicas elect a leader on the `kubekms-operator` Lease;
deleting the leader's Pod hands the Lease to the standby, which reconciles new keys; no key is
ever minted twice."""

from __future__ import annotations

from kindsuite import NAMESPACE, apply_key, kubectl, kubectl_json, wait_for, wait_ready


def holder() -> str:
    lease = kubectl_json("get", "lease", "kubekms-operator", "-n", NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")


def test_the_standby_takes_over_when_the_leader_pod_goes(tenant: str) -> None:
    selector = "app.kubernetes.io/component=operator"
    pods = kubectl_json("get", "pods", "-n", NAMESPACE, "-l", selector)["items"]
    assert len(pods) == 2, "the chart runs two operator replicas by default"
    leader = wait_for("a Lease holder", holder)
    assert leader in {p["metadata"]["name"] for p in pods}
    kubectl("delete", "pod", leader, "-n", NAMESPACE, "--grace-period=0", "--force", "--wait=false")
    new = wait_for("another holder", lambda: (h := holder()) and h != leader and h, timeout=120)
    assert new != leader
    apply_key(tenant, "failover-aes")
    status = wait_ready(tenant, "failover-aes")["status"]
    secrets = kubectl_json("get", "secrets", "-n", NAMESPACE, "-l", f"kubekms.io/key-id={status['keyId']}")
    assert len(secrets["items"]) == 1
