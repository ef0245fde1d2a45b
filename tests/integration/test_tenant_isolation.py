"""Tenants are enemies: a namespace admin in team-b attacks team-a's keys with everything RBAC as
the chart grants it allows — KmsKeys and their status in team-b, and the API with team-b's
ServiceAccount token — against the real operator and the real API on the emulated API server.

Every attack must fail, leave team-a's material intact (same sealed bytes, same owner record),
and leave team-a's key working. Degraded messages shown to team-b never name team-a's objects.
Only the administrator (the test's cluster-admin calls on Secrets in the KubeKMS namespace, where
tenants have no rights) can hand material to another namespace.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from fixtures.kube import KUBEKMS_NAMESPACE, OperatorProcess
from fixtures.kube_api import ApiProcess
from kms_core.ownership import OWNER_RECORD_ANNOTATION, TRANSFER_ANNOTATION, OwnerRecord, open_record
from kms_core.sealing.rootkey import RootKeySealer
from kube import KMSKEYS, SECRETS, Cluster
from kube.kmskeys import condition, kmskey, seed_ready_key, wait_degraded, wait_ready

KEYS = "/api/v1/kms/keys"
TENANT_VERBS = ["get", "list", "create", "update", "delete", "encrypt", "decrypt", "sign", "verify",
                "rotate", "generate-mac", "verify-mac", "export"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Tenant:
    """A namespace admin: full rights on kmskeys (and their status) in its own namespace only,
    and a ServiceAccount token for the API with every KubeKMS verb there."""

    def __init__(self, cluster: Cluster, api: ApiProcess, namespace: str) -> None:
        self.cluster, self.api, self.namespace = cluster, api, namespace
        cluster.ensure_namespace(namespace)
        self.token = cluster.rbac.add_service_account(namespace, "admin")
        cluster.rbac.allow(f"system:serviceaccount:{namespace}:admin", TENANT_VERBS, namespace=namespace)

    # ---- kubectl in its own namespace ---------------------------------------------------------
    def apply(self, name: str, **spec: Any) -> dict[str, Any]:
        return self.cluster.create(KMSKEYS, kmskey(name, **spec), self.namespace)

    def patch_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.cluster.patch(KMSKEYS, self.namespace, name, {"status": status}, subresource="status")

    def delete(self, name: str) -> None:
        self.cluster.delete(KMSKEYS, self.namespace, name)
        self.cluster.wait_for(lambda: self.cluster.get(KMSKEYS, self.namespace, name) is None, 30)

    def degraded_message(self, name: str) -> str:
        key = self.cluster.get(KMSKEYS, self.namespace, name)
        return str(condition(key, "Degraded").get("message", ""))

    # ---- the API -------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return self.api.call(method, path, self.token, body)

    def create_key(self, name: str, **extra: Any) -> dict[str, Any]:
        status, body = self.call("POST", KEYS, {"projectId": self.namespace, "name": name, **extra})
        assert status == 200, body
        return dict(body["key"])

    def encrypt(self, key_id: str, plaintext: bytes) -> str:
        status, body = self.call("POST", f"{KEYS}/{key_id}/encrypt", {"plaintext": b64(plaintext)})
        assert status == 200, body
        return str(body["ciphertext"])

    def decrypt(self, key_id: str, ciphertext: str) -> tuple[int, bytes | None]:
        status, body = self.call("POST", f"{KEYS}/{key_id}/decrypt", {"ciphertext": ciphertext})
        return status, base64.b64decode(body["plaintext"]) if status == 200 else None


@pytest.fixture
def teams(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> tuple[Tenant, Tenant]:
    return Tenant(kube_cluster, kube_api, "team-a"), Tenant(kube_cluster, kube_api, "team-b")


def material(cluster: Cluster, key_id: str) -> dict[str, Any]:
    secret = cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key_id}")
    assert secret is not None, f"the material of {key_id} is gone"
    return secret


def record(cluster: Cluster, root_key: str, key_id: str) -> OwnerRecord:
    notes = material(cluster, key_id)["metadata"]["annotations"]
    return open_record(notes[OWNER_RECORD_ANNOTATION], key_id, RootKeySealer.from_base64(root_key))


def orphaned(cluster: Cluster, key_id: str) -> bool:
    return "kubekms.io/orphaned" in (material(cluster, key_id)["metadata"].get("labels") or {})


def assert_no_leak(message: str, *names: str) -> None:
    assert message, "a Degraded KmsKey must say why"
    for name in names:
        assert name not in message, f"{name!r} leaked into another tenant's status: {message}"


def assert_unreachable(b: Tenant, key_id: str, ciphertext: str) -> None:
    """Nothing of team-a's key through the API with team-b's token."""
    assert b.decrypt(key_id, ciphertext)[0] in (403, 404)
    assert b.call("GET", f"{KEYS}/{key_id}")[0] in (403, 404)
    assert b.call("GET", f"{KEYS}/{key_id}/private-key")[0] in (403, 404)
    assert b.call("POST", f"{KEYS}/{key_id}/encrypt", {"plaintext": b64(b"x")})[0] in (403, 404)


def test_squatting_before_and_after_the_owners_deletion_fails(
    kube_cluster: Cluster, kube_root_key: str, teams: tuple[Tenant, Tenant]
) -> None:
    a, b = teams
    payroll = a.create_key("payroll")
    key_id = payroll["id"]
    ciphertext = a.encrypt(key_id, b"salaries")
    sealed_before = material(kube_cluster, key_id)["data"]

    # Before the owner's deletion: the material is in use and belongs to another namespace.
    b.apply("squat", keyId=key_id, deletionPolicy="Delete")
    wait_degraded(kube_cluster, "squat", "AdoptionRefused", "team-b")
    assert_no_leak(b.degraded_message("squat"), "team-a", "payroll")
    assert_unreachable(b, key_id, ciphertext)

    # The owner deletes its key through the API (deletionPolicy Retain): the material is kept,
    # orphaned, still recorded for team-a; the squatter stays Degraded and gets nothing.
    assert a.call("DELETE", f"{KEYS}/{key_id}")[0] == 200
    kube_cluster.wait_for(lambda: orphaned(kube_cluster, key_id), 30)
    time.sleep(1.0)  # the Secret watch re-converges the waiting squatter on that change
    squat = kube_cluster.get(KMSKEYS, "team-b", "squat")
    assert condition(squat, "Ready").get("status") == "False"
    assert condition(squat, "Degraded").get("reason") == "AdoptionRefused"
    assert_no_leak(b.degraded_message("squat"), "team-a", "payroll")
    owner = record(kube_cluster, kube_root_key, key_id)
    assert (owner.namespace, owner.name) == ("team-a", "payroll")
    assert_unreachable(b, key_id, ciphertext)

    # team-a restores its key in its own namespace: it wins, decrypts its old ciphertext.
    a.apply("payroll-restored", keyId=key_id)
    wait_ready(kube_cluster, "payroll-restored", "team-a")
    assert a.decrypt(key_id, ciphertext) == (200, b"salaries")
    assert record(kube_cluster, kube_root_key, key_id).name == "payroll-restored"

    # The squatter deletes its KmsKey with deletionPolicy Delete: team-a's material survives.
    b.delete("squat")
    assert material(kube_cluster, key_id)["data"] == sealed_before
    assert a.decrypt(key_id, ciphertext) == (200, b"salaries")
    assert_unreachable(b, key_id, ciphertext)


def test_pre_registered_squatter_loses_the_backup_restore_race(
    kube_cluster: Cluster, kube_root_key: str, teams: tuple[Tenant, Tenant]
) -> None:
    """The README's restore order: material first (kept or restored Secret), then the KmsKey.
    A squatter that registered the keyId before the owner's restore never gets the material."""
    a, b = teams
    orig = a.create_key("ledger")
    key_id = orig["id"]
    ciphertext = a.encrypt(key_id, b"entries")
    a.delete("ledger")  # deleted by mistake, Retain: orphaned material
    kube_cluster.wait_for(lambda: orphaned(kube_cluster, key_id), 30)

    b.apply("ledger", keyId=key_id, deletionPolicy="Delete")  # same name, other namespace, first
    wait_degraded(kube_cluster, "ledger", "AdoptionRefused", "team-b")
    a.apply("ledger", keyId=key_id)
    wait_ready(kube_cluster, "ledger", "team-a")
    assert a.decrypt(key_id, ciphertext) == (200, b"entries")
    assert condition(kube_cluster.get(KMSKEYS, "team-b", "ledger"), "Ready").get("status") == "False"
    assert_unreachable(b, key_id, ciphertext)
    b.delete("ledger")
    assert a.decrypt(key_id, ciphertext) == (200, b"entries")
    assert record(kube_cluster, kube_root_key, key_id).namespace == "team-a"


def test_status_patches_never_route_requests_to_another_tenants_material(
    kube_cluster: Cluster, kube_root_key: str, teams: tuple[Tenant, Tenant]
) -> None:
    """status.keyId is writable by anyone with `patch kmskeys/status`: it is never authority."""
    a, b = teams
    victim = a.create_key("payroll")
    ciphertext = a.encrypt(victim["id"], b"salaries")
    own = b.create_key("mine")
    b_obj = kube_cluster.get(KMSKEYS, "team-b", "mine")
    assert b_obj is not None
    forged = {**b_obj["status"], "keyId": victim["id"], "secretName": f"kmskey-{victim['id']}"}
    b.patch_status("mine", forged)
    # A second object now claims the keyId: the API still routes it to team-a's KmsKey only.
    assert a.decrypt(victim["id"], ciphertext) == (200, b"salaries")
    status, found = b.call("GET", f"{KEYS}/key-name/mine?projectId=team-b")
    assert status == 404, found
    status, listed = b.call("GET", f"{KEYS}?projectId=team-b")
    assert status == 200 and victim["id"] not in [k["id"] for k in listed["keys"]]
    assert_unreachable(b, victim["id"], ciphertext)
    # The operator notices at its next look and marks the forged key Degraded.
    kube_cluster.patch(KMSKEYS, "team-b", "mine", {"spec": {"description": "wake the operator"}})
    wait_degraded(kube_cluster, "mine", "SecretConflict", "team-b")
    assert_no_leak(b.degraded_message("mine"), "team-a", "payroll")
    # Deleting the forged key with deletionPolicy Delete touches team-a's material not at all.
    kube_cluster.patch(KMSKEYS, "team-b", "mine", {"spec": {"deletionPolicy": "Delete"}})
    b.delete("mine")
    assert record(kube_cluster, kube_root_key, victim["id"]).namespace == "team-a"
    assert a.decrypt(victim["id"], ciphertext) == (200, b"salaries")
    assert own["id"] != victim["id"]


def test_recreating_a_key_as_exportable_does_not_make_its_material_exportable(
    kube_cluster: Cluster, kube_root_key: str, teams: tuple[Tenant, Tenant]
) -> None:
    a, _b = teams
    sealed = a.create_key("vault", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    key_id = sealed["id"]
    assert a.call("GET", f"{KEYS}/{key_id}/private-key")[0] == 400  # not exportable
    a.delete("vault")
    kube_cluster.wait_for(lambda: orphaned(kube_cluster, key_id), 30)

    a.apply("vault", keyUsage="sign-verify", algorithm="ECC_NIST_P256", keyId=key_id, exportable=True)
    wait_degraded(kube_cluster, "vault", "AttributeMismatch", "team-a")
    assert "exportable" in a.degraded_message("vault")
    status, body = a.call("GET", f"{KEYS}/{key_id}/private-key")
    assert status in (400, 404) and "PRIVATE KEY" not in str(body)
    assert record(kube_cluster, kube_root_key, key_id).exportable is False

    # Declared as it was minted, the key is back — and still not exportable.
    a.delete("vault")
    a.apply("vault", keyUsage="sign-verify", algorithm="ECC_NIST_P256", keyId=key_id)
    wait_ready(kube_cluster, "vault", "team-a")
    status, body = a.call("GET", f"{KEYS}/{key_id}/private-key")
    assert status == 400 and "PRIVATE KEY" not in str(body)
    assert a.call("GET", f"{KEYS}/{key_id}")[1]["key"]["isExportable"] is False


def test_only_an_administrator_transfers_material_to_another_namespace(
    kube_cluster: Cluster, kube_root_key: str, teams: tuple[Tenant, Tenant]
) -> None:
    a, b = teams
    c = Tenant(kube_cluster, a.api, "team-c")
    orig = a.create_key("handover")
    key_id = orig["id"]
    ciphertext = a.encrypt(key_id, b"files")
    a.delete("handover")
    kube_cluster.wait_for(lambda: orphaned(kube_cluster, key_id), 30)

    # The administrator marks the material for team-c (a Secret in the KubeKMS namespace).
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key_id}",
                       {"metadata": {"annotations": {TRANSFER_ANNOTATION: "team-c"}}})
    b.apply("grab", keyId=key_id)
    wait_degraded(kube_cluster, "grab", "AdoptionRefused", "team-b")
    c.apply("handover", keyId=key_id)
    wait_ready(kube_cluster, "handover", "team-c")
    assert c.decrypt(key_id, ciphertext) == (200, b"files")
    owner = record(kube_cluster, kube_root_key, key_id)
    assert (owner.namespace, owner.name) == ("team-c", "handover")
    notes = material(kube_cluster, key_id)["metadata"]["annotations"]
    assert TRANSFER_ANNOTATION not in notes  # the mark is used up by the transfer
    assert_unreachable(b, key_id, ciphertext)
    assert a.decrypt(key_id, ciphertext)[0] in (403, 404)  # team-a gave it away


def test_a_record_moved_from_another_secret_does_not_authenticate(
    kube_cluster: Cluster, teams: tuple[Tenant, Tenant]
) -> None:
    """Even someone able to edit Secrets cannot re-point material by copying a record across."""
    a, b = teams
    victim = a.create_key("payroll")
    ciphertext = a.encrypt(victim["id"], b"salaries")
    own = b.create_key("mine")
    theirs = material(kube_cluster, own["id"])["metadata"]["annotations"][OWNER_RECORD_ANNOTATION]
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{victim['id']}",
                       {"metadata": {"annotations": {OWNER_RECORD_ANNOTATION: theirs}}})
    wait_degraded(kube_cluster, "payroll", "OwnerRecordInvalid", "team-a")
    assert_unreachable(b, victim["id"], ciphertext)
    assert a.decrypt(victim["id"], ciphertext)[0] in (404, 503)  # not served until it is repaired


def test_material_from_before_owner_records_is_recorded_for_its_labelled_owner_only(
    kube_cluster: Cluster, kube_root_key: str, kube_operator_factory: Any, kube_api: ApiProcess
) -> None:
    """An upgrade: Secrets written before owner records existed get one, once, for the KmsKey
    their (operator-written) labels name; orphaned ones only for a KmsKey in that namespace."""
    sealer = RootKeySealer.from_base64(kube_root_key)
    live = seed_ready_key(kube_cluster, sealer, "team-a", "old-live", record=False, exportable=True)
    gone = seed_ready_key(kube_cluster, sealer, "team-a", "old-gone", record=False, exportable=True)
    kube_cluster.patch(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{gone}",
                       {"metadata": {"labels": {"kubekms.io/orphaned": "true"}}})
    kube_cluster.delete(KMSKEYS, "team-a", "old-gone")  # no finalizer yet: gone at once
    a, b = Tenant(kube_cluster, kube_api, "team-a"), Tenant(kube_cluster, kube_api, "team-b")
    assert a.call("GET", f"{KEYS}/{live}")[0] == 404  # no record yet: not served
    kube_operator_factory().start()

    def recorded() -> OwnerRecord | None:
        notes = material(kube_cluster, live)["metadata"].get("annotations") or {}
        return record(kube_cluster, kube_root_key, live) if OWNER_RECORD_ANNOTATION in notes else None

    owner = kube_cluster.wait_for(recorded, 30)
    obj = kube_cluster.get(KMSKEYS, "team-a", "old-live")
    assert obj is not None and owner.uid == obj["metadata"]["uid"] and owner.exportable is True
    kube_cluster.wait_for(lambda: a.call("GET", f"{KEYS}/{live}")[0] == 200, 30)

    b.apply("old-gone", keyId=gone)
    wait_degraded(kube_cluster, "old-gone", "AdoptionRefused", "team-b")
    a.apply("old-gone", keyId=gone)  # exportable is unknown for orphaned legacy material: false
    wait_ready(kube_cluster, "old-gone", "team-a")
    assert record(kube_cluster, kube_root_key, gone).exportable is False
    assert a.call("GET", f"{KEYS}/{gone}/private-key")[0] == 400
