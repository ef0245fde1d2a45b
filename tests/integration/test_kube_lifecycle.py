"""Key lifecycle through the API in Kubernetes mode (issue 13): the policy the operator put in
force on a KmsKey is what the API enforces, and the API's policy changes go through the spec.

- processes: the real operator and `kubekms-api --store kubernetes` on the emulated API server;
  old ciphertexts decrypt until `spec.minDecryptionVersion` says otherwise, then get the clear
  400, and trimming destroys the material while the current version keeps working;
- in process: `KeyService.set_policy` / `trim` on the Kubernetes store write the KmsKey spec and
  wait for the real operator; deleted keys are restored through a KmsKey, which the store says.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fixtures.callers import POLICY, Caller
from fixtures.kube import KUBEKMS_NAMESPACE, OperatorProcess
from fixtures.kube_api import ApiProcess
from kms_api.kube.store import RESTORE_IN_SPEC, KubernetesKeyStore
from kms_api.modes.kubernetes import build
from kms_api.settings import Settings
from kms_core.errors import BadRequest
from kms_core.lifecycle import PolicyChange, VersionState
from kms_core.model import KeySpec
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_kube.config import KubeConfig
from kube import KMSKEYS, SECRETS, Cluster

KEYS = "/api/v1/kms/keys"
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
VERBS = ["get", "list", "create", "update", "delete", "encrypt", "decrypt", "rotate"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def in_force(
    cluster: Cluster, namespace: str, name: str, **policy: Any
) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        obj = cluster.get(KMSKEYS, namespace, name)
        got = ((obj or {}).get("status") or {}).get("policy") or {}
        return obj if all(got.get(k) == v for k, v in policy.items()) else None

    return probe


def test_old_ciphertexts_decrypt_until_the_bound_then_a_clear_400_and_trim_destroys(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    kube_cluster.ensure_namespace("team-a")
    token = kube_cluster.rbac.add_service_account("team-a", "app")
    kube_cluster.rbac.allow("system:serviceaccount:team-a:app", VERBS, namespace="team-a")
    status, body = kube_api.call("POST", KEYS, token, {"projectId": "team-a", "name": "payments"})
    assert status == 200, body
    path = f"{KEYS}/{body['key']['id']}"

    def encrypt(text: bytes) -> str:
        status, out = kube_api.call("POST", f"{path}/encrypt", token, {"plaintext": b64(text)})
        assert status == 200, out
        return str(out["ciphertext"])

    def decrypt(ciphertext: str) -> tuple[int, Any]:
        return kube_api.call("POST", f"{path}/decrypt", token, {"ciphertext": ciphertext})

    old = encrypt(b"v1 secret")
    assert kube_api.call("POST", f"{path}/rotate", token)[0] == 200
    new = encrypt(b"v2 secret")
    for ct, plain in ((old, b"v1 secret"), (new, b"v2 secret")):
        status, out = decrypt(ct)
        assert status == 200 and base64.b64decode(out["plaintext"]) == plain

    kube_cluster.patch(KMSKEYS, "team-a", "payments", {"spec": {"minDecryptionVersion": 2}})
    kube_cluster.wait_for(in_force(kube_cluster, "team-a", "payments", minDecryptionVersion=2))
    status, out = kube_api.call("POST", f"{path}/decrypt", token, {"ciphertext": old})
    assert status == 400, out
    assert out["message"] == TOO_OLD and out["statusCode"] == 400 and out["reqId"]
    assert decrypt(new)[0] == 200

    # Lowering the bound again re-enables version 1: its material was only disabled.
    kube_cluster.patch(KMSKEYS, "team-a", "payments", {"spec": {"minDecryptionVersion": 1}})
    kube_cluster.wait_for(in_force(kube_cluster, "team-a", "payments", minDecryptionVersion=1))
    assert decrypt(old)[0] == 200

    # Trim: version 1's material is destroyed in the Secret; version 2 keeps working.
    bounds = {"minDecryptionVersion": 2, "minEncryptionVersion": 2, "minAvailableVersion": 2}
    kube_cluster.patch(KMSKEYS, "team-a", "payments", {"spec": bounds})
    obj = kube_cluster.wait_for(in_force(kube_cluster, "team-a", "payments", **bounds))
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{obj['status']['keyId']}")
    assert secret is not None and sorted(secret["data"]) == ["version-2"]
    assert decrypt(old)[1]["message"] == TOO_OLD
    status, out = decrypt(new)
    assert status == 200 and base64.b64decode(out["plaintext"]) == b"v2 secret"
    assert decrypt(encrypt(b"after trim"))[0] == 200


@pytest.fixture
async def service(kube_cluster: Cluster, kube_root_key: str) -> AsyncIterator[KeyService]:
    config = KubeConfig(server=kube_cluster.url, namespace=KUBEKMS_NAMESPACE)
    sealer = RootKeySealer.from_base64(kube_root_key)  # the operator's root key
    store, auth = build(Settings(), sealer, config=config)
    assert isinstance(store, KubernetesKeyStore)
    store.ready_timeout = 20.0
    yield KeyService(store, sealer, POLICY)
    await store.close()
    await auth.close()


async def test_set_policy_and_trim_write_the_spec_and_wait_for_the_operator(
    kube_cluster: Cluster, kube_operator: OperatorProcess, service: KeyService
) -> None:
    me = Caller().identity
    kube_cluster.ensure_namespace("team-b")
    key = (await service.create(me, KeySpec(name="k", project_id="team-b"))).result
    for _ in range(2):
        await service.rotate(me, key.id)

    change = PolicyChange(rotation_period=90 * 86400, min_decryption_version=2, min_encryption_version=3)
    updated, _warnings = (await service.set_policy(me, key.id, change)).result
    assert (updated.rotation_period, updated.min_decryption_version, updated.min_encryption_version) == (
        90 * 86400, 2, 3,
    )
    obj = kube_cluster.get(KMSKEYS, "team-b", "k")
    assert obj is not None
    assert obj["spec"]["rotationPeriod"] == "90d" and obj["spec"]["minDecryptionVersion"] == 2
    assert obj["status"]["nextRotationTime"]
    assert (await service.get(me, key.id)).result.rotated_at is not None

    # The core's rules refuse an impossible bound before anything is written.
    with pytest.raises(BadRequest, match="cannot set min decryption version of 9"):
        await service.set_policy(me, key.id, PolicyChange(min_decryption_version=9))

    trimmed = (await service.trim(me, key.id, 2)).result
    assert trimmed.min_available_version == 2
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key.id}")
    assert secret is not None and sorted(secret["data"]) == ["version-2", "version-3"]
    _key, infos = (await service.versions(me, key.id)).result
    states = [(v, state) for v, _at, state in infos]
    assert states == [(3, VersionState.PRIMARY), (2, VersionState.DECRYPT_ONLY)]

    # Clearing the period removes it from the spec (never rotated on schedule).
    cleared, _ = (await service.set_policy(me, key.id, PolicyChange(rotation_period=0))).result
    assert cleared.rotation_period == 0
    obj = kube_cluster.get(KMSKEYS, "team-b", "k")
    assert obj is not None and "rotationPeriod" not in obj["spec"] and "nextRotationTime" not in obj["status"]


async def test_delete_protection_from_the_spec_and_restore_is_a_kmskey(
    kube_cluster: Cluster, kube_operator: OperatorProcess, service: KeyService
) -> None:
    me = Caller().identity
    kube_cluster.ensure_namespace("team-c")
    key = (await service.create(me, KeySpec(name="k", project_id="team-c"))).result
    kube_cluster.patch(KMSKEYS, "team-c", "k", {"spec": {"deletionAllowed": False}})
    for _ in range(100):  # the API's KmsKey watch delivers the change
        if (await service.get(me, key.id)).result.has_delete_protection:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(BadRequest, match="protected from deletion"):
        await service.delete(me, key.id)
    updated = (await service.update(me, key.id, has_delete_protection=False)).result
    assert updated.has_delete_protection is False
    obj = kube_cluster.get(KMSKEYS, "team-c", "k")
    assert obj is not None and "deletionAllowed" not in obj["spec"]
    await service.delete(me, key.id)
    for call in (service.deleted(me, "team-c"), service.restore(me, key.id), service.purge(me, key.id)):
        with pytest.raises(BadRequest) as caught:
            await call
        assert str(caught.value) == RESTORE_IN_SPEC and "spec.keyId" in RESTORE_IN_SPEC
