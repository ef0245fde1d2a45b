"""The Secret watch's decisions: which Secret changes converge which KmsKey, and the work queue."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

from kms_core.sealing.rootkey import RootKeySealer
from kms_kube import layout as m
from kms_kube.client import KubeClient
from kms_kube.config import KubeConfig
from kms_operator.context import Runtime
from kms_operator.keyindex import KeyIndex
from kms_operator.secretwatch import Fingerprint, SecretWatch
from kms_operator.settings import Settings
from kms_operator.workqueue import KeyQueue

KEY_ID = "6f1c0a55-8b1e-4d7a-9a3c-2e5f7b9d1c0e"
OWNER = ("team-a", "orders")


def secret(versions: dict[int, bytes] | None = None, **labels: str) -> dict[str, Any]:
    body = m.secret(
        key_id=KEY_ID,
        namespace="kubekms-system",
        owner_namespace=OWNER[0],
        owner_name=OWNER[1],
        kek_id="0123456789abcdef",
        algorithm="aes-256-gcm",
        key_usage="encrypt-decrypt",
        sealed=b"sealed-1",
        record="sealed-record",
    )
    if versions is not None:
        body["data"] = {m.version_key(v): base64.b64encode(b).decode() for v, b in versions.items()}
    body["metadata"]["labels"].update(labels)
    return body


def watch(namespaces: str = "") -> SecretWatch:
    sealer = RootKeySealer.from_base64(base64.b64encode(os.urandom(32)).decode())
    env = {"KUBEKMS_NAMESPACE": "kubekms-system", "KUBEKMS_WATCH_NAMESPACES": namespaces}
    settings = Settings.from_env(env)
    api = KubeClient(KubeConfig(server="http://127.0.0.1:1"))  # never called: decisions only
    return SecretWatch(Runtime(api=api, sealer=sealer, settings=settings))


def queued(w: SecretWatch) -> int:
    return len(w.queue)


def test_rotation_keeps_material_but_a_removed_or_replaced_version_loses_it() -> None:
    v1 = Fingerprint.of(secret({1: b"a"}))
    assert not v1.lost_material(Fingerprint.of(secret({1: b"a", 2: b"b"})))  # a rotation
    assert not v1.lost_material(Fingerprint.of(secret({1: b"a"}, **{m.ORPHANED: "true"})))
    assert Fingerprint.of(secret({1: b"a", 2: b"b"})).lost_material(v1)  # version 2 removed
    assert v1.lost_material(Fingerprint.of(secret({1: b"other"})))  # version 1 replaced
    assert v1.lost_material(Fingerprint.of(secret({})))
    other_kek = secret({1: b"a"})
    other_kek["metadata"]["annotations"][m.KEK_ID] = "fedcba9876543210"
    assert v1.lost_material(Fingerprint.of(other_kek))
    assert v1.owner == OWNER and Fingerprint.of(secret(**{m.ORPHANED: "true"})).owner is None


def test_key_index_rebinds_and_forgets() -> None:
    index = KeyIndex()
    index.bind("kmskey-a", OWNER)
    index.mark(OWNER, degraded=True)
    assert index.owner("kmskey-a") == OWNER and index.degraded(OWNER)
    index.bind("kmskey-b", OWNER)  # e.g. spec.keyId now names other material
    assert index.owner("kmskey-a") is None and index.owner("kmskey-b") == OWNER
    index.bind("kmskey-b", ("team-b", "restored"))  # adopted by another key
    index.forget(OWNER)
    assert index.owner("kmskey-b") == ("team-b", "restored") and not index.degraded(OWNER)
    index.forget(("team-b", "restored"))
    assert len(index) == 0


def test_deletion_converges_the_bound_key_else_the_labelled_owner_never_an_orphan() -> None:
    w = watch()
    name = m.secret_name(KEY_ID)
    w._changed(name, Fingerprint.of(secret()), None)  # not bound yet: the owner labels
    assert w.queue._queued == {OWNER}
    w = watch()
    w.rt.index.bind(name, ("team-b", "restored"))  # bound: the index wins over stale labels
    w._changed(name, Fingerprint.of(secret()), None)
    assert w.queue._queued == {("team-b", "restored")}
    w = watch()
    w._changed(name, Fingerprint.of(secret(**{m.ORPHANED: "true"})), None)
    assert queued(w) == 0
    w = watch(namespaces="team-b,prod-*")  # another operator's keys: not ours to converge
    w._changed(name, Fingerprint.of(secret()), None)
    assert queued(w) == 0
    w = watch(namespaces="team-b,team-*")
    w._changed(name, Fingerprint.of(secret()), None)
    assert w.queue._queued == {OWNER}


def test_new_or_harmlessly_changed_secrets_wake_only_degraded_keys() -> None:
    w = watch()
    name = m.secret_name(KEY_ID)
    w.rt.index.bind(name, OWNER)
    v1, v2 = Fingerprint.of(secret({1: b"a"})), Fingerprint.of(secret({1: b"a", 2: b"b"}))
    w._changed(name, None, v1)  # created with its key: nothing to do
    w._changed(name, v1, v2)  # rotated
    assert queued(w) == 0
    w._changed(name, v2, v1)  # version 2 lost
    assert w.queue._queued == {OWNER}
    w = watch()
    w.rt.index.bind(name, OWNER)
    w.rt.index.mark(OWNER, degraded=True)
    w._changed(name, None, v1)  # restored from backup
    assert w.queue._queued == {OWNER}


async def test_the_queue_deduplicates_and_requeues_a_key_changed_while_being_checked() -> None:
    started, release, twice = asyncio.Event(), asyncio.Event(), asyncio.Event()
    done: list[tuple[str, str]] = []

    async def work(key: tuple[str, str]) -> None:
        started.set()
        await release.wait()
        done.append(key)
        if len(done) == 2:
            twice.set()

    queue = KeyQueue(work, workers=1)
    for _ in range(3):
        queue.add(OWNER)
    assert len(queue) == 1
    runner = asyncio.create_task(queue.run())
    await asyncio.wait_for(started.wait(), 5)
    queue.add(OWNER)  # changed again while being checked: checked once more afterwards
    release.set()
    await asyncio.wait_for(twice.wait(), 5)
    await asyncio.sleep(0.05)  # a third, wrong, check would land here
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert done == [OWNER, OWNER] and len(queue) == 0


async def test_a_failing_check_does_not_stop_the_workers() -> None:
    done: list[tuple[str, str]] = []
    finished = asyncio.Event()

    async def work(key: tuple[str, str]) -> None:
        if key == OWNER:
            raise RuntimeError("boom")
        done.append(key)
        finished.set()

    queue = KeyQueue(work, workers=1)
    queue.add(OWNER)
    queue.add(("team-b", "ok"))
    runner = asyncio.create_task(queue.run())
    await asyncio.wait_for(finished.wait(), 5)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert done == [("team-b", "ok")]
