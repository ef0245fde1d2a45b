"""Key lifecycle in Kubernetes mode (issue 13): the real operator on the emulated API server.

Time is injected, never slept: operators run with the test-only KUBEKMS_TEST_CLOCK_OFFSET, so an
operator started "25 hours later" finds a 24h rotation due at once. Exactly once is proved on the
stored objects: the Secret's history (every version the API server stored), its versions and
the Rotated events, with two operator replicas racing (leader election off) and after a restart
that missed several periods.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fixtures.kube import OperatorProcess
from fixtures.kube_api import free_port
from kube import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.kmskeys import condition, kmskey, reasons, secret_of, unseal_all, wait_ready

DAY = 86400


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def version_writes(cluster: Cluster, key: dict[str, Any], version: int) -> int:
    """How many distinct sealed blobs the API server ever stored as `version-<n>` of the key."""
    name = f"kmskey-{key['status']['keyId']}"
    blobs = {v["data"][f"version-{version}"] for v in cluster.history(SECRETS, KUBEKMS_NAMESPACE, name)
             if v and f"version-{version}" in v["data"]}
    return len(blobs)


def rotated_events(cluster: Cluster, name: str) -> list[str]:
    return [e["message"] for e in cluster.events("default", name) if e.get("reason") == "Rotated"]


def set_spec(cluster: Cluster, name: str, **fields: Any) -> None:
    cluster.patch(KMSKEYS, "default", name, {"spec": fields})


def request_rotation(cluster: Cluster, name: str, value: str) -> None:
    cluster.patch(KMSKEYS, "default", name, {"metadata": {"annotations": {"kubekms.io/rotate": value}}})


def settle(op: OperatorProcess, seconds: float = 4) -> None:
    """Let the operators run several check intervals (KUBEKMS_CHECK_INTERVAL is 1 s in tests)."""
    time.sleep(seconds)
    assert op.running, op.log()[-3000:]


def test_two_replicas_rotate_a_due_key_exactly_once(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess], kube_root_key: str
) -> None:
    first = kube_operator_factory().start()
    kube_cluster.create(KMSKEYS, kmskey("daily", rotationPeriod="24h"), "default")
    key = wait_ready(kube_cluster, "daily")
    made = parse(key["status"]["lastRotationTime"])
    assert parse(key["status"]["nextRotationTime"]) == made + timedelta(hours=24)
    assert key["status"]["policy"]["rotationPeriod"] == "1d"  # canonical form of 24h
    first.stop()

    # 25 hours later, two replicas without leader election race for the same due rotation.
    offset = str(25 * 3600)
    replicas = [
        kube_operator_factory(
            POD_NAME=f"op-{i}", KUBEKMS_LEADER_ELECTION="false", KUBEKMS_TEST_HOOKS="true",
            KUBEKMS_TEST_CLOCK_OFFSET=offset,
        )
        for i in range(2)
    ]
    for op in replicas:
        op.start(wait_ready=False)
    for op in replicas:
        op.wait_ready()
    key = wait_ready(kube_cluster, "daily", version=2)
    settle(replicas[0])
    key = wait_ready(kube_cluster, "daily", version=2)  # still 2: nobody rotated again

    assert version_writes(kube_cluster, key, 2) == 1
    secret = secret_of(kube_cluster, key)
    assert secret is not None and sorted(secret["data"]) == ["version-1", "version-2"]
    materials = unseal_all(kube_root_key, key, secret)
    assert materials[1] != materials[2]
    (message,) = rotated_events(kube_cluster, "daily")
    assert "to version 2 (scheduled" in message
    rotations = sum(op.log().count("Rotated key") for op in replicas)
    assert rotations == 1, [op.log()[-2000:] for op in replicas]
    # The schedule restarts from the new version, made on the operators' (offset) clock.
    last = parse(key["status"]["lastRotationTime"])
    assert last >= datetime.now(UTC) + timedelta(hours=24, minutes=59)
    assert parse(key["status"]["nextRotationTime"]) == last + timedelta(hours=24)
    assert [(v["version"], v["state"]) for v in key["status"]["versions"]] == [(1, "enabled"), (2, "primary")]


def test_a_restart_after_several_missed_periods_rotates_once(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    op = kube_operator_factory().start()
    body = kmskey("sig", "sign-verify", "ECC_NIST_P256", rotationPeriod="1d")
    kube_cluster.create(KMSKEYS, body, "default")
    wait_ready(kube_cluster, "sig")
    op.stop()

    port = free_port()
    later = kube_operator_factory(  # 5 periods missed
        KUBEKMS_TEST_HOOKS="true", KUBEKMS_TEST_CLOCK_OFFSET=str(5 * DAY + 60), KUBEKMS_LIVENESS=f"http://127.0.0.1:{port}/healthz"
    ).start()
    key = wait_ready(kube_cluster, "sig", version=2)
    settle(later)
    key = wait_ready(kube_cluster, "sig", version=2)
    assert version_writes(kube_cluster, key, 2) == 1 and version_writes(kube_cluster, key, 3) == 0
    assert len(rotated_events(kube_cluster, "sig")) == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert 'kubekms_key_rotations_total{trigger="scheduled"} 1.0' in metrics
    assert 'kubekms_key_rotation_overdue{lateness="over-period"} 0.0' in metrics
    assert key["status"]["keyId"] not in metrics
    assert parse(key["status"]["nextRotationTime"]) > datetime.now(UTC) + timedelta(days=5, hours=23)


def test_a_disabled_key_is_not_rotated_on_schedule(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    kube_operator_factory(KUBEKMS_TEST_HOOKS="true", KUBEKMS_TEST_CLOCK_OFFSET=str(3 * DAY)).start()
    kube_cluster.create(KMSKEYS, kmskey("off", rotationPeriod="24h", disabled=True), "default")
    key = wait_ready(kube_cluster, "off")
    time.sleep(3)
    key = wait_ready(kube_cluster, "off")
    assert "nextRotationTime" not in key["status"]
    assert rotated_events(kube_cluster, "off") == []


def test_refused_bounds_keep_the_key_ready_and_trimming_destroys_material(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("k"), "default")
    wait_ready(kube_cluster, "k")
    for target in ("2", "3"):
        request_rotation(kube_cluster, "k", target)
        key = wait_ready(kube_cluster, "k", version=int(target))

    # A bound above the current version: refused with OpenBao's text, previous policy in force.
    set_spec(kube_cluster, "k", minDecryptionVersion=5)

    def refused() -> dict[str, Any] | None:
        obj = kube_cluster.get(KMSKEYS, "default", "k")
        return obj if condition(obj, "Degraded").get("reason") == "PolicyRefused" else None

    key = kube_cluster.wait_for(refused)
    message = condition(key, "Degraded")["message"]
    assert "cannot set min decryption version of 5, latest key version is 3" in message
    assert condition(key, "Ready")["status"] == "True"
    assert key["status"]["policy"]["minDecryptionVersion"] == 1
    assert "PolicyRefused" in reasons(kube_cluster, "k")

    # Trimming before encryption is bounded: refused, nothing destroyed.
    set_spec(kube_cluster, "k", minDecryptionVersion=2, minAvailableVersion=2)
    kube_cluster.wait_for(
        lambda: "minimum encryption version is not set"
        in condition(kube_cluster.get(KMSKEYS, "default", "k"), "Degraded").get("message", "")
    )
    secret = secret_of(kube_cluster, key)
    assert secret is not None and sorted(secret["data"]) == ["version-1", "version-2", "version-3"]

    # Bounded: versions 1 and 2 are destroyed in the Secret; the key is healthy again.
    set_spec(kube_cluster, "k", minDecryptionVersion=3, minEncryptionVersion=3, minAvailableVersion=3)

    def trimmed() -> dict[str, Any] | None:
        obj = kube_cluster.get(KMSKEYS, "default", "k")
        healthy = condition(obj, "Degraded").get("status") == "False"
        return obj if healthy and obj and obj["status"]["policy"].get("minAvailableVersion") == 3 else None

    key = kube_cluster.wait_for(trimmed)
    secret = secret_of(kube_cluster, key)
    assert secret is not None and sorted(secret["data"]) == ["version-3"]
    assert secret["metadata"]["annotations"]["kubekms.io/min-available-version"] == "3"
    assert [v["state"] for v in key["status"]["versions"]] == ["destroyed", "destroyed", "primary"]
    assert condition(key, "Ready")["status"] == "True"
    assert "Trimmed" in reasons(kube_cluster, "k")
    # A later rotation keeps working on a trimmed key.
    request_rotation(kube_cluster, "k", "4")
    key = wait_ready(kube_cluster, "k", version=4)
    assert [v["state"] for v in key["status"]["versions"]] == ["destroyed", "destroyed", "enabled", "primary"]


def test_a_deleted_key_is_kept_restored_with_its_key_id_and_purged_after_the_window(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess], kube_root_key: str
) -> None:
    op = kube_operator_factory().start()  # default window: 7 days
    kube_cluster.create(KMSKEYS, kmskey("oops", deletionPolicy="Delete"), "default")
    key = wait_ready(kube_cluster, "oops")
    key_id = key["status"]["keyId"]
    material = unseal_all(kube_root_key, key, secret_of(kube_cluster, key) or {})
    kube_cluster.delete(KMSKEYS, "default", "oops")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "default", "oops") is None)

    secret = secret_of(kube_cluster, key)
    assert secret is not None
    labels, notes = secret["metadata"]["labels"], secret["metadata"]["annotations"]
    assert labels["kubekms.io/deleted"] == "true" and labels["kubekms.io/orphaned"] == "true"
    purge_at = parse(notes["kubekms.io/purge-at"])
    assert timedelta(days=6, hours=23) < purge_at - datetime.now(UTC) <= timedelta(days=7)
    assert "MaterialDeletionScheduled" in [e.get("reason") for e in kube_cluster.events("default")]

    # Restore: a KmsKey with spec.keyId in the same namespace (any name) adopts the material.
    kube_cluster.create(KMSKEYS, kmskey("restored", keyId=key_id, deletionPolicy="Delete"), "default")
    restored = wait_ready(kube_cluster, "restored")
    assert restored["status"]["keyId"] == key_id
    secret = secret_of(kube_cluster, restored)
    assert secret is not None
    assert "kubekms.io/deleted" not in secret["metadata"]["labels"]
    assert "kubekms.io/purge-at" not in secret["metadata"]["annotations"]
    assert unseal_all(kube_root_key, restored, secret) == material

    # Deleted again, and the operator comes back after the window: the Secret is purged.
    kube_cluster.delete(KMSKEYS, "default", "restored")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "default", "restored") is None)
    assert secret_of(kube_cluster, restored) is not None
    op.stop()
    later = kube_operator_factory(KUBEKMS_TEST_HOOKS="true", KUBEKMS_TEST_CLOCK_OFFSET=str(8 * DAY)).start()
    kube_cluster.wait_for(lambda: secret_of(kube_cluster, restored) is None, message=later.log()[-3000:])
    assert "Purged Secret" in later.log()
    purged = [e for e in kube_cluster.events(KUBEKMS_NAMESPACE) if e.get("reason") == "MaterialPurged"]
    assert len(purged) == 1 and key_id in purged[0]["message"]


def test_a_restored_key_is_not_purged(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    # Window 1 h and the clock 2 h ahead: the material is due for purging the moment it is
    # deleted, but restoring first (while no operator runs) cancels the purge.
    op = kube_operator_factory(KUBEKMS_DELETION_WINDOW="1h").start()
    kube_cluster.create(KMSKEYS, kmskey("k", deletionPolicy="Delete"), "default")
    key = wait_ready(kube_cluster, "k")
    kube_cluster.delete(KMSKEYS, "default", "k")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "default", "k") is None)
    kube_cluster.create(KMSKEYS, kmskey("k", keyId=key["status"]["keyId"]), "default")
    wait_ready(kube_cluster, "k")
    op.stop()
    later = kube_operator_factory(KUBEKMS_TEST_HOOKS="true", KUBEKMS_TEST_CLOCK_OFFSET=str(2 * 3600)).start()
    settle(later, 3)
    assert secret_of(kube_cluster, key) is not None
    assert "Purged Secret" not in later.log()
