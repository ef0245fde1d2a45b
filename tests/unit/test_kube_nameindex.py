"""The sorted name index behind Kubernetes-mode list pages gives exactly the pages of the former
filter-and-sort over every cached KmsKey, whatever the names (unicode, `%`, `_`), the liveness
changes, the offset, limit, order and search; and it follows the cache as objects change."""

from __future__ import annotations

import itertools
import random
import uuid
from typing import Any

import pytest

from kms_api.kube import kmskey as kk
from kms_api.kube.nameindex import NameIndex, ilike
from kms_core.stores.base import ListQuery
from kms_kube.client import KubeClient
from kms_kube.config import KubeConfig
from kms_kube.reflector import ObjectCache

NAMESPACES = ("team-a", "team-b", "Team-A")
ALPHABET = "abcxyzAZ019-._%ßäÄİıçЖжключ🔑ǅ "
SEARCHES = ("", " ", "a", "A", "%", "_", "a_", "%z", "_%_", "ß", "Ä", "КЛЮЧ", "-", ".", "🔑", "i", "no-such")
OFFSETS = (0, 1, 2, 7, 50, 99, 100, 120, 400)
LIMITS = (0, 1, 3, 10, 100)


def kmskey(ns: str, name: str, *, live: bool = True, rv: int = 1, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": ns, "name": name, "resourceVersion": str(rv)}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status = {"keyId": str(uuid.uuid4()), "version": 1} if live else {"version": 0}
    return {"metadata": meta, "spec": {}, "status": status}


def oracle(objects: list[dict[str, Any]], query: ListQuery) -> tuple[list[str], int]:
    """The list code the index replaced, kept verbatim as the reference (names instead of Keys)."""
    pattern = ilike(query.search) if query.search else None
    matches = [
        obj for obj in objects
        if obj["metadata"]["namespace"] == query.project_id and kk.is_live(obj)
        and (pattern is None or pattern.search(obj["metadata"]["name"]))
    ]
    matches.sort(key=lambda o: o["metadata"]["name"], reverse=query.descending)
    window = matches[query.offset:query.offset + query.limit]
    return [o["metadata"]["name"] for o in window], (len(matches) if window else 0)


def indexed(index: NameIndex, query: ListQuery) -> tuple[list[str], int]:
    names, total = index.page(query)
    return names, (total if names else 0)


def random_name(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8)))


@pytest.fixture
def cache() -> ObjectCache:
    client = KubeClient(KubeConfig(server="http://127.0.0.1:9"))  # never called: no list, no watch
    return ObjectCache(client, "kmskeys", kk.kmskeys_path(), kk.kmskeys_path)


def populate(cache: ObjectCache, rng: random.Random) -> None:
    """A few hundred keys in 3 namespaces, then deletions, liveness flips, replays and stale events."""
    rv = itertools.count(2)
    for _ in range(420):
        ns = rng.choice(NAMESPACES)
        cache.put(kmskey(ns, random_name(rng), live=rng.random() < 0.85, rv=next(rv)))
    for ns in NAMESPACES:  # the wildcard characters and case twins as whole names
        for name in ("%", "_", "a%b", "a_b", "A_B", "ab", "AB", "%%", "__"):
            cache.put(kmskey(ns, name, rv=next(rv)))
    objects = list(cache.values())
    rng.shuffle(objects)
    for obj in objects[:60]:
        cache.remove(obj["metadata"]["namespace"], obj["metadata"]["name"])
    for obj in objects[60:100]:  # being deleted: no longer listed
        cache.put(kmskey(obj["metadata"]["namespace"], obj["metadata"]["name"], deleting=True, rv=next(rv)))
    for obj in objects[100:130]:  # material appears (or, for live ones, a status without it)
        live = not kk.is_live(obj)
        cache.put(kmskey(obj["metadata"]["namespace"], obj["metadata"]["name"], live=live, rv=next(rv)))
    for obj in objects[130:150]:  # replays of the current object, and stale events, change nothing
        cache.put(obj)
        stale = kmskey(obj["metadata"]["namespace"], obj["metadata"]["name"], live=not kk.is_live(obj), rv=1)
        cache.put(stale)
    cache.remove("team-a", "no-such-key")


@pytest.mark.parametrize("seed", [1, 2])
def test_pages_match_the_filter_and_sort_reference(cache: ObjectCache, seed: int) -> None:
    rng = random.Random(seed)
    incremental = NameIndex()
    cache.add_listener(incremental)  # follows every put/remove
    populate(cache, rng)
    rebuilt = NameIndex()
    cache.add_listener(rebuilt)  # reset from the final contents
    objects = list(cache.values())
    assert 250 < sum(kk.is_live(o) for o in objects) < len(objects)
    compared = nonempty = 0
    for ns, search, offset, limit, descending in itertools.product(
        (*NAMESPACES, "absent"), SEARCHES, OFFSETS, LIMITS, (False, True)
    ):
        query = ListQuery(project_id=ns, offset=offset, limit=limit, search=search or None,
                          descending=descending)
        expected = oracle(objects, query)
        assert indexed(incremental, query) == expected, query
        assert indexed(rebuilt, query) == expected, query
        compared += 1
        nonempty += bool(expected[0])
    assert nonempty > compared // 5  # the grid exercises real pages, not only empty ones


def test_full_relist_replaces_the_index(cache: ObjectCache) -> None:
    index = NameIndex()
    cache.add_listener(index)
    cache.put(kmskey("team-a", "old", rv=2))
    cache._replace([kmskey("team-a", "b", rv=3), kmskey("team-a", "a", rv=3), kmskey("team-b", "x", rv=3),
                    kmskey("team-a", "pending", live=False, rv=3)])
    assert index.page(ListQuery(project_id="team-a")) == (["a", "b"], 2)
    assert index.page(ListQuery(project_id="team-a", descending=True, offset=1)) == (["a"], 2)
    assert index.count("team-b") == 1
    cache.remove("team-b", "x")
    assert index.count("team-b") == 0 and index.page(ListQuery(project_id="team-b")) == ([], 0)


def test_descending_deep_offsets_are_positional(cache: ObjectCache) -> None:
    index = NameIndex()
    cache.add_listener(index)
    for i in range(1000):
        cache.put(kmskey("team-a", f"k{i:04d}", rv=i + 2))
    assert index.page(ListQuery(project_id="team-a", offset=995, limit=10)) == (
        [f"k{i:04d}" for i in range(995, 1000)], 1000)
    assert index.page(ListQuery(project_id="team-a", offset=995, limit=10, descending=True)) == (
        [f"k{i:04d}" for i in (4, 3, 2, 1, 0)], 1000)
    assert index.page(ListQuery(project_id="team-a", offset=1000, limit=10, descending=True)) == ([], 1000)
