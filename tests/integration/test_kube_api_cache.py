"""The Kubernetes key store in process against the emulated API server: cache hits cost no API
request, misses read through, watches recover, failures map to 503/504, unsupported writes refuse.

Keys are laid out in the cluster exactly as the operator writes them (KmsKey with Ready status,
Secret `kmskey-<keyId>` with a real sealed `version-1`), so these tests do not need the operator
process; the end-to-end tests with it are in test_kube_api.py.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from fixtures.callers import POLICY, Caller
from fixtures.kube import KUBEKMS_NAMESPACE
from fixtures.kube_api import free_port
from kms_api.http.error_replies import status_of
from kms_api.kube.store import IMPORT_REFUSED, RENAME_REFUSED, KubernetesKeyStore
from kms_api.modes.kubernetes import build
from kms_api.settings import Settings
from kms_core.errors import BadRequest, NotFound, Timeout, Unavailable
from kms_core.gcmusage import GCM_USAGE
from kms_core.model import KeySpec
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.base import ListQuery
from kms_kube.config import KubeConfig
from kube import KMSKEYS, Cluster
from kube.kmskeys import kmskey, seed_ready_key

SEALER = RootKeySealer(os.urandom(32))
KMSKEYS_LIST = r"/apis/kubekms\.io/v1alpha1/kmskeys$"
SECRETS_LIST = rf"/api/v1/namespaces/{KUBEKMS_NAMESPACE}/secrets$"


# Authorisation is tested with the real reviewer elsewhere; here every action is allowed.
allow = Caller()


def seed(cluster: Cluster, namespace: str, name: str, description: str = "") -> str:
    """A Ready key as the operator leaves it: KmsKey + status, and its sealed material Secret."""
    return seed_ready_key(cluster, SEALER, namespace, name, description=description)


def requests_made(cluster: Cluster) -> int:
    assert cluster.emulator is not None
    return len(cluster.emulator)  # a kmock root view iterates over every request it served


@pytest.fixture
async def store(kube_cluster: Cluster) -> AsyncIterator[KubernetesKeyStore]:
    config = KubeConfig(server=kube_cluster.url, namespace=KUBEKMS_NAMESPACE)
    built, auth = build(Settings(), SEALER, config=config)
    assert isinstance(built, KubernetesKeyStore)
    built.ready_timeout = 1.0
    yield built
    await built.close()
    await auth.close()


async def test_warm_reads_make_no_api_requests(kube_cluster: Cluster, store: KubernetesKeyStore) -> None:
    key_id = seed(kube_cluster, "team-a", "payments", "pay")
    service = KeyService(store, SEALER, POLICY)
    # Cold: syncs the caches, reads kube-system's uid.
    key = (await service.get(allow.identity, key_id)).result
    assert (key.name, key.project_id, key.description) == ("payments", "team-a", "pay")
    ciphertext = (await service.encrypt(allow.identity, key_id, b"hello")).result
    before = requests_made(kube_cluster)
    for _ in range(20):
        assert (await service.get(allow.identity, key_id)).result.id == key_id
        assert (await store.get_by_name("team-a", "payments")) == key
        assert (await service.decrypt(allow.identity, key_id, ciphertext)).result == b"hello"
        page, total = await store.list(ListQuery(project_id="team-a"))
        assert [k.id for k in page] == [key_id] and total == 1
    assert requests_made(kube_cluster) == before


async def test_list_pages_search_and_empty_page_quirk(
    kube_cluster: Cluster, store: KubernetesKeyStore
) -> None:
    for name in ("alpha", "beta", "gamma-1", "gamma-2"):
        seed(kube_cluster, "team-a", name)
    seed(kube_cluster, "team-b", "alpha")
    await store.start()
    await store.keys.wait_for(lambda: len(list(store.keys.values())) == 5 or None, 10)
    page, total = await store.list(ListQuery(project_id="team-a", offset=1, limit=2))
    assert [k.name for k in page] == ["beta", "gamma-1"] and total == 4
    page, total = await store.list(ListQuery(project_id="team-a", search="GAMMA_", descending=True))
    assert [k.name for k in page] == ["gamma-2", "gamma-1"] and total == 2
    assert await store.list(ListQuery(project_id="team-a", offset=4)) == ([], 0)


async def test_count_by_state_counts_ready_keys_from_the_cache_once_synced(
    kube_cluster: Cluster, store: KubernetesKeyStore
) -> None:
    seed(kube_cluster, "team-a", "on-1")
    seed(kube_cluster, "team-b", "on-2")
    kube_cluster.ensure_namespace("team-b")
    seed_ready_key(kube_cluster, SEALER, "team-b", "off", disabled=True)
    kube_cluster.create(KMSKEYS, kmskey("pending"), namespace="team-a")  # no material yet: not counted
    assert await store.count_by_state() is None  # never starts the watches itself
    assert not store.keys.synced
    await store.start()
    await store.keys.wait_for(lambda: len(list(store.keys.values())) == 4 or None, 10)
    before = requests_made(kube_cluster)
    assert await store.count_by_state() == (2, 1)
    assert requests_made(kube_cluster) == before  # from the cache alone
    kube_cluster.patch(KMSKEYS, "team-a", "on-1", {"spec": {"disabled": True}})
    await store.keys.wait_for(
        lambda: (store.keys.get("team-a", "on-1") or {}).get("spec", {}).get("disabled") or None, 10
    )
    assert await store.count_by_state() == (1, 2)


async def test_cache_miss_reads_through_while_watches_are_down(
    kube_cluster: Cluster, store: KubernetesKeyStore
) -> None:
    await store.get(str(uuid.uuid4()))  # starts and syncs the caches
    kube_cluster.fail(60, status=503, path=f"{KMSKEYS_LIST}|{SECRETS_LIST}")
    kube_cluster.cut_watches()
    key_id = seed(kube_cluster, "team-a", "late")
    assert store.secrets.get(KUBEKMS_NAMESPACE, f"kmskey-{key_id}") is None
    key = await store.get(key_id)  # Secret by name -> owner labels -> KmsKey by name
    assert key is not None and key.name == "late"
    assert [v.version for v in await store.versions(key_id)] == [1]
    assert await store.get(str(uuid.uuid4())) is None
    assert await store.get_by_name("team-a", "absent") is None


async def test_cut_watches_resume_from_the_last_resource_version_and_catch_up(
    kube_cluster: Cluster, store: KubernetesKeyStore
) -> None:
    first = seed(kube_cluster, "team-a", "first")
    assert await store.get(first) is not None
    # Both caches listed, and both watches open (the get only waited for the KmsKey cache).
    assert await store.secrets.wait_synced(10)
    for _ in range(200):
        if kube_cluster.open_watches >= 2:
            break
        await asyncio.sleep(0.025)
    relists, watches = store.keys.relists, store.keys.watches
    assert kube_cluster.cut_watches() >= 2
    kube_cluster.patch(KMSKEYS, "team-a", "first", {"spec": {"disabled": True}})
    second = seed(kube_cluster, "team-a", "second")
    await store.keys.wait_for(lambda: (store.keys.get("team-a", "second") or {}).get("status"), 10)
    assert (store.keys.get("team-a", "second") or {})["status"]["keyId"] == second
    # Like client-go's reflector: a dropped watch resumes; only 410 Gone would list again.
    assert store.keys.relists == relists and store.keys.watches > watches
    before = requests_made(kube_cluster)
    key = await store.get(first)
    assert key is not None and key.is_disabled
    assert requests_made(kube_cluster) == before  # served by the recovered cache


async def test_create_without_operator_times_out_with_504(
    kube_cluster: Cluster, store: KubernetesKeyStore
) -> None:
    kube_cluster.ensure_namespace("team-a")
    with pytest.raises(Timeout) as info:
        await store.create(str(uuid.uuid4()), KeySpec(project_id="team-a", name="pending"), None)
    assert status_of(info.value)[0] == 504 and "team-a/pending" in info.value.message
    obj = kube_cluster.get(KMSKEYS, "team-a", "pending")
    assert obj is not None and "keyId" not in obj["spec"]
    assert await store.get_by_name("team-a", "pending") is None  # no material yet: not a key


async def test_unsupported_writes_are_refused(kube_cluster: Cluster, store: KubernetesKeyStore) -> None:
    key_id = seed(kube_cluster, "team-a", "payments")
    with pytest.raises(BadRequest) as info:
        await store.update(key_id, name="renamed")
    assert info.value.message == RENAME_REFUSED
    assert (await store.update(key_id, name="payments", description="same name is fine")).description
    spec = KeySpec(project_id="team-a", name="imported")
    with pytest.raises(BadRequest) as info:
        await store.create(str(uuid.uuid4()), spec, b"sealed-bytes")
    assert info.value.message == IMPORT_REFUSED
    assert kube_cluster.get(KMSKEYS, "team-a", "imported") is None
    with pytest.raises(NotFound):
        await store.delete(str(uuid.uuid4()))


async def test_unreachable_api_server_is_503() -> None:
    store, auth = build(Settings(), SEALER, config=KubeConfig(server=f"http://127.0.0.1:{free_port()}"))
    assert isinstance(store, KubernetesKeyStore)
    store.sync_timeout = 0.5
    try:
        with pytest.raises(Unavailable):
            await store.get(str(uuid.uuid4()))
        with pytest.raises(Unavailable):
            await store.org_id()
    finally:
        await store.close()
        await auth.close()


async def test_api_server_errors_on_writes_are_503(kube_cluster: Cluster, store: KubernetesKeyStore) -> None:
    key_id = seed(kube_cluster, "team-a", "payments")
    assert await store.get(key_id) is not None
    kube_cluster.fail(60, status=500, path=r"/namespaces/team-a/kmskeys")
    with pytest.raises(Unavailable):
        await store.update(key_id, description="x")
    with pytest.raises(Unavailable):
        await store.rotate(key_id, 1, None)
    kube_cluster.heal()
    assert (await store.update(key_id, description="x")).description == "x"


async def test_not_ready_until_both_caches_hold_a_full_list(
    kube_cluster: Cluster, store: KubernetesKeyStore
) -> None:
    """A replica must not take traffic while its watches are still loading: /readyz (service.ready)
    fails with 503 until the KmsKey and Secret lists have arrived, then passes."""
    seed(kube_cluster, "team-a", "payments")
    kube_cluster.slow(3.0, 1.5, path=KMSKEYS_LIST, method="GET")
    service = KeyService(store, SEALER, POLICY)
    with pytest.raises(Unavailable, match="caches are still loading"):
        await service.ready()
    for _ in range(100):
        try:
            await service.ready()
            break
        except Unavailable:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("the caches never synced")
    assert store.keys.synced and store.secrets.synced


async def test_a_key_version_nearing_its_nonce_budget_gets_a_warning_event(
    kube_cluster: Cluster, store: KubernetesKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GCM_USAGE, "warn_at", 8)  # counters take these when they are made
    monkeypatch.setattr(GCM_USAGE, "stride", 4)
    key_id = seed(kube_cluster, "team-a", "busy")
    service = KeyService(store, SEALER, POLICY)
    for _ in range(7):
        await service.encrypt(allow.identity, key_id, b"x")
    assert not [e for e in kube_cluster.events("team-a", "busy") if e.get("reason") == "RotationRecommended"]
    await service.encrypt(allow.identity, key_id, b"x")

    def warned() -> list[dict[str, object]]:
        return [e for e in kube_cluster.events("team-a", "busy") if e.get("reason") == "RotationRecommended"]

    for _ in range(100):
        if warned():
            break
        await asyncio.sleep(0.05)
    [event] = warned()
    obj = kube_cluster.get(KMSKEYS, "team-a", "busy")
    assert obj is not None and event["type"] == "Warning"
    assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]  # type: ignore[index]
    assert key_id in str(event["message"]) and "rotate" in str(event["message"])
