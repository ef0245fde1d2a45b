"""Paginated lists end to end: the emulated API server pages like kube-apiserver (limit, continue,
remainingItemCount, every page as of the first page's resourceVersion, 400 and 410 tokens), and
the API's watch caches load large collections page by page, resume the watch from the first
page's resourceVersion, start over on an expired token, and freeze what they loaded out of the
cyclic garbage collector's reach."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import kmock
import pytest

from fixtures.kube import CRD_PATH, KUBEKMS_NAMESPACE
from kms_api.kube import kmskey as kk
from kms_api.kube.store import KubernetesKeyStore
from kms_api.modes.kubernetes import build
from kms_api.settings import load_settings
from kms_core.errors import ConfigError
from kms_core.sealing.rootkey import RootKeySealer
from kms_kube.client import ApiError, KubeClient
from kms_kube.config import KubeConfig
from kms_kube.reflector import ObjectCache
from kube import KMSKEYS, SECRETS, Cluster

SECRETS_ALL = "/api/v1/secrets"
SEALER = RootKeySealer(bytes(range(32)))
BULK = "bulk"  # the namespace holding the 1,200 objects
# The emulator validates against the CRD schema: the two required fields.
BULK_SPEC = {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm"}


def secret(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "dg=="}}


def served(cluster: Cluster) -> int:
    assert cluster.emulator is not None
    return len(cluster.emulator)  # kmock records every request it served


def list_requests(cluster: Cluster, path: str, since: int = 0) -> list[Mapping[str, str]]:
    """Query parameters of the list (not watch) requests on `path` served after the first `since`."""
    assert cluster.emulator is not None
    return [r.params for r in list(cluster.emulator)[since:]
            if r.method.value == "GET" and r.url.path == path and "watch" not in r.params]


def names(listing: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in listing["items"]]


@pytest.fixture
async def client(kube_cluster: Cluster) -> AsyncIterator[KubeClient]:
    c = KubeClient(KubeConfig(server=kube_cluster.url))
    yield c
    await c.close()


@pytest.fixture(scope="module")
def bulk_cluster() -> Iterator[Cluster]:
    """1,200 Secrets (labelled like key Secrets) and 1,200 Ready KmsKeys, shared by the cache tests
    that only read them (creating them costs a few seconds)."""
    with Cluster(namespaces=("default", "kube-system", BULK, KUBEKMS_NAMESPACE)) as cluster:
        cluster.apply_file(CRD_PATH)
        for i in range(1200):
            cluster.create(SECRETS, secret(f"s-{i:04d}", **{kk.KEY_ID_LABEL: f"id-{i}"}), namespace=BULK)
            status = {"keyId": f"id-{i}", "version": 1}
            cluster.create(KMSKEYS, {"metadata": {"name": f"k-{i:04d}"}, "spec": BULK_SPEC, "status": status},
                           namespace=BULK)
        yield cluster


# ---- the emulator --------------------------------------------------------------------------------

@pytest.mark.parametrize("snapshots", [8, 0], ids=["memoised-snapshot", "rebuilt-from-history"])
async def test_emulator_pages_as_of_the_first_page(snapshots: int) -> None:
    with Cluster(namespaces=("default", "ns-a", "ns-b"), list_snapshots=snapshots) as cluster:
        for ns, name in [("ns-b", "b1"), ("ns-a", "a3"), ("ns-a", "a1"), ("ns-b", "b0"), ("ns-a", "a2"),
                         ("ns-a", "a4"), ("ns-b", "b2")]:
            cluster.create(SECRETS, secret(name), namespace=ns)
        client = KubeClient(KubeConfig(server=cluster.url))
        try:
            first = await client.get(SECRETS_ALL, {"limit": "3"})
            rv = first["metadata"]["resourceVersion"]
            assert names(first) == [("ns-a", "a1"), ("ns-a", "a2"), ("ns-a", "a3")]
            assert first["metadata"]["remainingItemCount"] == 4 and first["kind"] == "SecretList"
            # After the first page: change one object of page 2, delete another, add one in range.
            cluster.patch(SECRETS, "ns-b", "b0", {"metadata": {"labels": {"changed": "yes"}}})
            cluster.delete(SECRETS, "ns-b", "b1")
            cluster.create(SECRETS, secret("a5"), namespace="ns-a")
            second = await client.get(SECRETS_ALL, {"limit": "3", "continue": first["metadata"]["continue"]})
            assert names(second) == [("ns-a", "a4"), ("ns-b", "b0"), ("ns-b", "b1")]
            assert second["items"][1]["metadata"]["labels"] == {}  # b0 as it was at the first page
            assert second["metadata"]["resourceVersion"] == rv
            assert second["metadata"]["remainingItemCount"] == 1
            third = await client.get(SECRETS_ALL, {"limit": "3", "continue": second["metadata"]["continue"]})
            assert names(third) == [("ns-b", "b2")]
            assert "continue" not in third["metadata"] and "remainingItemCount" not in third["metadata"]
            assert third["metadata"]["resourceVersion"] == rv
            # A fresh list sees the present.
            now = await client.get(SECRETS_ALL)
            assert names(now) == [("ns-a", n) for n in ("a1", "a2", "a3", "a4", "a5")] + [
                ("ns-b", "b0"), ("ns-b", "b2")]
            assert int(now["metadata"]["resourceVersion"]) > int(rv)
        finally:
            await client.close()


async def test_emulator_limit_edges_and_selectors(kube_cluster: Cluster, client: KubeClient) -> None:
    kube_cluster.ensure_namespace("team-a")
    for i in range(5):
        labels = {"pick": "yes"} if i % 2 == 0 else {}
        kube_cluster.create(SECRETS, secret(f"s{i}", **labels), namespace="team-a")
    path = "/api/v1/namespaces/team-a/secrets"
    everything = await client.get(path)
    assert len(everything["items"]) == 5 and "continue" not in everything["metadata"]
    assert names(await client.get(path, {"limit": "0"})) == names(everything)  # 0: no limit
    exact = await client.get(path, {"limit": "5"})
    assert len(exact["items"]) == 5 and "continue" not in exact["metadata"]
    picked = await client.get(path, {"limit": "2", "labelSelector": "pick=yes"})
    assert [n for _, n in names(picked)] == ["s0", "s2"]
    # Like kube-apiserver: no remainingItemCount when a selector makes counting expensive.
    assert picked["metadata"]["continue"] and "remainingItemCount" not in picked["metadata"]
    rest = await client.get(path, {"limit": "2", "labelSelector": "pick=yes",
                                   "continue": picked["metadata"]["continue"]})
    assert [n for _, n in names(rest)] == ["s4"]


@pytest.mark.parametrize("params", [
    {"limit": "2", "continue": "not-a-token"},
    {"limit": "2", "continue": base64.urlsafe_b64encode(b'{"rv": "x", "last": 1}').decode()},
    {"limit": "2", "continue": base64.urlsafe_b64encode(
        json.dumps({"v": "meta.k8s.io/v1", "rv": 10**9, "last": ["", "a"]}).encode()).decode()},
    {"limit": "two"},
], ids=["garbage", "wrong-shape", "future-rv", "bad-limit"])
async def test_emulator_rejects_bad_list_parameters_with_400(
    kube_cluster: Cluster, client: KubeClient, params: dict[str, str]
) -> None:
    with pytest.raises(ApiError) as info:
        await client.get("/api/v1/namespaces/default/secrets", params)
    assert (info.value.status, info.value.reason) == (400, "BadRequest")


async def test_emulator_continue_with_resource_version_is_400(
    kube_cluster: Cluster, client: KubeClient
) -> None:
    for i in range(3):
        kube_cluster.create(SECRETS, secret(f"s{i}"), namespace="default")
    first = await client.get("/api/v1/namespaces/default/secrets", {"limit": "1"})
    with pytest.raises(ApiError) as info:
        await client.get("/api/v1/namespaces/default/secrets",
                         {"limit": "1", "continue": first["metadata"]["continue"], "resourceVersion": "1"})
    assert info.value.status == 400 and "resource version" in info.value.message


async def test_emulator_expired_continue_token_is_410() -> None:
    with Cluster(log_size=10) as cluster:
        for i in range(3):
            cluster.create(SECRETS, secret(f"s{i}"), namespace="default")
        client = KubeClient(KubeConfig(server=cluster.url))
        try:
            first = await client.get("/api/v1/namespaces/default/secrets", {"limit": "1"})
            for i in range(12):  # move the compaction window past the token's resourceVersion
                cluster.create(SECRETS, secret(f"later-{i}"), namespace="kube-public")
            with pytest.raises(ApiError) as info:
                await client.get("/api/v1/namespaces/default/secrets",
                                 {"limit": "1", "continue": first["metadata"]["continue"]})
            assert (info.value.status, info.value.reason) == (410, "Expired")
        finally:
            await client.close()


# ---- the watch caches ------------------------------------------------------------------------------

def secrets_cache(client: KubeClient, namespace: str, page_size: int = 500) -> ObjectCache:
    return ObjectCache(client, "secrets", kk.secrets_path(namespace), lambda ns, n: kk.secrets_path(ns, n),
                       page_size=page_size, retry_delay=0.05)


async def test_caches_load_1200_objects_in_pages_of_500(bulk_cluster: Cluster) -> None:
    store, auth = build(load_settings([], {"KUBEKMS_KUBE_LIST_PAGE_SIZE": "500"}), SEALER,
                        config=KubeConfig(server=bulk_cluster.url, namespace=BULK))
    assert isinstance(store, KubernetesKeyStore)
    since = served(bulk_cluster)
    try:
        await store.start()
        assert await store.keys.wait_synced(30) and await store.secrets.wait_synced(30)
        assert len(list(store.keys.values())) == 1200 and len(list(store.secrets.values())) == 1200
        for path in (kk.kmskeys_path(), kk.secrets_path(BULK)):
            pages = list_requests(bulk_cluster, path, since)
            assert [p.get("limit") for p in pages] == ["500"] * 3, path
            assert "continue" not in pages[0] and all(p.get("continue") for p in pages[1:])
        assert store.names.count(BULK) == 1200
    finally:
        await store.close()
        await auth.close()


async def test_object_created_between_pages_arrives_through_the_watch(bulk_cluster: Cluster) -> None:
    emulator = bulk_cluster.emulator
    assert emulator is not None
    late = f"late-{uuid.uuid4().hex[:8]}"
    created: list[str] = []

    async def between_pages(res: kmock.resource, params: Mapping[str, str]) -> None:
        if params.get("continue") and not created:
            obj = await emulator.create_object(SECRETS, secret(late), namespace=BULK)
            created.append(obj["metadata"]["resourceVersion"])

    emulator.list_hook = between_pages
    client = KubeClient(KubeConfig(server=bulk_cluster.url))
    cache = secrets_cache(client, BULK)
    try:
        cache.start()
        assert await cache.wait_synced(30)
        assert created, "the hook never saw a continue page"
        await cache.wait_for(lambda: cache.get(BULK, late), 10)
        assert cache.relists == 1 and cache.list_restarts == 0  # one list, then the watch
    finally:
        emulator.list_hook = None
        await cache.stop()
        await client.close()
        bulk_cluster.delete(SECRETS, BULK, late)


async def test_expired_continue_token_restarts_the_list() -> None:
    with Cluster(namespaces=("default", "kube-system", BULK), log_size=30) as cluster:
        for i in range(120):
            cluster.create(SECRETS, secret(f"s-{i:03d}"), namespace=BULK)
        emulator = cluster.emulator
        assert emulator is not None
        expired: list[bool] = []

        async def compact_once(res: kmock.resource, params: Mapping[str, str]) -> None:
            if params.get("continue") and not expired:
                expired.append(True)
                for i in range(40):  # more writes than the log keeps: the token's RV is compacted
                    await emulator.create_object(SECRETS, secret(f"noise-{i}"), namespace="default")

        emulator.list_hook = compact_once
        client = KubeClient(KubeConfig(server=cluster.url))
        cache = secrets_cache(client, BULK, page_size=50)
        try:
            cache.start()
            assert await cache.wait_synced(30)
            assert cache.list_restarts == 1 and len(list(cache.values())) == 120
            pages = list_requests(cluster, kk.secrets_path(BULK))
            # page 1, the expired page 2, then a complete list of 3 pages
            assert [bool(p.get("continue")) for p in pages] == [False, True, False, True, True]
            cluster.create(SECRETS, secret("after"), namespace=BULK)
            await cache.wait_for(lambda: cache.get(BULK, "after"), 10)  # the watch runs
        finally:
            await cache.stop()
            await client.close()


async def test_readers_keep_the_old_contents_until_a_relist_completes() -> None:
    with Cluster(namespaces=("default", "kube-system", BULK), log_size=30) as cluster:
        for i in range(120):
            cluster.create(SECRETS, secret(f"s-{i:03d}"), namespace=BULK)
        emulator = cluster.emulator
        assert emulator is not None
        client = KubeClient(KubeConfig(server=cluster.url))
        cache = secrets_cache(client, BULK, page_size=50)
        held, release = threading.Event(), threading.Event()  # the emulator runs on another thread

        async def hold_second_page(res: kmock.resource, params: Mapping[str, str]) -> None:
            if params.get("continue") and cache.relists == 1:
                held.set()
                await asyncio.to_thread(release.wait, 10)

        try:
            cache.start()
            assert await cache.wait_synced(30) and cache.relists == 1
            cluster.delete(SECRETS, BULK, "s-000")
            await cache.wait_for(lambda: None if cache.get(BULK, "s-000") else True, 10)
            for i in range(40):  # writes elsewhere compact the log past the watch's resourceVersion
                cluster.create(SECRETS, secret(f"x-{i:02d}"), namespace="default")
            emulator.list_hook = hold_second_page
            assert cluster.cut_watches() == 1  # the resumed watch is too old (410): list again
            assert await asyncio.to_thread(held.wait, 10)
            # The relist is half done (one page of 50 arrived): readers still see the full old state.
            assert len(list(cache.values())) == 119 and cache.synced and cache.relists == 1
            release.set()
            await cache.wait_for(lambda: cache.relists == 2 or None, 10)
            assert len(list(cache.values())) == 119
        finally:
            release.set()
            emulator.list_hook = None
            await cache.stop()
            await client.close()


async def test_a_full_list_freezes_the_loaded_objects(bulk_cluster: Cluster) -> None:
    gc.unfreeze()
    before = gc.get_freeze_count()
    client = KubeClient(KubeConfig(server=bulk_cluster.url))
    cache = secrets_cache(client, BULK)
    try:
        cache.start()
        assert await cache.wait_synced(30)
        # At least every loaded Secret and its metadata dict left the collected generations.
        assert gc.get_freeze_count() >= before + 2 * 1200
    finally:
        await cache.stop()
        await client.close()
        gc.unfreeze()


def test_page_size_setting() -> None:
    assert load_settings([], {}).kube.list_page_size == 500
    assert load_settings([], {"KUBEKMS_KUBE_LIST_PAGE_SIZE": "0"}).kube.list_page_size == 0
    assert load_settings(["--kube-list-page-size", "50"], {}).kube.list_page_size == 50
    for bad in ("-1", "many"):
        with pytest.raises(ConfigError, match="KUBEKMS_KUBE_LIST_PAGE_SIZE"):
            load_settings([], {"KUBEKMS_KUBE_LIST_PAGE_SIZE": bad})


async def test_a_watch_that_ends_normally_is_resumed_not_relisted(
    kube_cluster: Cluster, client: KubeClient
) -> None:
    """The server closes every watch after `timeoutSeconds`; the cache watches again from the
    last resourceVersion it saw (no full list), and misses nothing written in between."""
    kube_cluster.ensure_namespace("resume")
    kube_cluster.create(SECRETS, secret("s-0", **{kk.KEY_ID_LABEL: "id-0"}), namespace="resume")
    cache = secrets_cache(client, "resume")
    cache.watch_timeout = 1  # the emulator ends each stream after a second
    cache.start()
    try:
        assert await cache.wait_synced(10)
        for i in range(1, 4):
            kube_cluster.create(SECRETS, secret(f"s-{i}", **{kk.KEY_ID_LABEL: f"id-{i}"}), namespace="resume")
            await asyncio.sleep(0.6)  # writes land both inside streams and between them
        await cache.wait_for(lambda: cache.get("resume", "s-3"), 10)
        for _ in range(100):  # a third stream opens once two have ended
            if cache.watches >= 3:
                break
            await asyncio.sleep(0.1)
        assert cache.watches >= 3, cache.watches  # streams ended and were resumed
        assert cache.relists == 1  # ...without listing again
        assert sorted(kk.secret_key_id(o) or "" for o in cache.values()) == ["id-0", "id-1", "id-2", "id-3"]
    finally:
        await cache.stop()
