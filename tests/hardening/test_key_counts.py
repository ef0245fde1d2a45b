"""The keys-by-state gauge: SqliteStore.count_by_state and the kubekms_keys metric it feeds."""

from __future__ import annotations

import os
from pathlib import Path

from fixtures.api import ApiProcess
from hardening.rawhttp import build, send
from kms_api.app import _count_keys
from kms_api.observe import metrics
from kms_core.model import KeySpec
from kms_core.stores.sqlite import SqliteStore


async def test_count_by_state_counts_every_project(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "data", "00" * 8)
    try:
        assert await store.count_by_state() == (0, 0)
        ids = []
        for i, project in enumerate(("a", "a", "b", "c")):
            key = await store.create(
                os.urandom(8).hex(), KeySpec(project_id=project, name=f"k{i}"), b"sealed"
            )
            ids.append(key.id)
        await store.update(ids[1], is_disabled=True)
        await store.update(ids[3], is_disabled=True)
        assert await store.count_by_state() == (2, 2)
        await store.delete(ids[3])
        await store.update(ids[1], is_disabled=False)
        assert await store.count_by_state() == (3, 0)
    finally:
        await store.close()


def _gauge(state: str) -> float:
    value = metrics.REGISTRY.get_sample_value("kubekms_keys", {"state": state})
    return -1.0 if value is None else value


async def test_app_refreshes_the_gauge_from_the_store(tmp_path: Path) -> None:
    import asyncio
    import contextlib

    from aiohttp import web

    from kms_api.appstate import RESOURCES, Resources

    store = SqliteStore.open(tmp_path / "data", "00" * 8)
    for i in range(3):
        key = await store.create(os.urandom(8).hex(), KeySpec(project_id="p", name=f"g{i}"), b"sealed")
    await store.update(key.id, is_disabled=True)

    class Holder:
        pass

    holder = Holder()
    holder.store = store  # type: ignore[attr-defined]
    app = web.Application()
    app[RESOURCES] = Resources(holder, None)  # type: ignore[arg-type]
    task = asyncio.create_task(_count_keys(app))
    try:
        for _ in range(50):
            if _gauge("enabled") == 2 and _gauge("disabled") == 1:
                break
            await asyncio.sleep(0.02)
        assert (_gauge("enabled"), _gauge("disabled")) == (2.0, 1.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


def test_live_process_exports_the_gauge(live_api: ApiProcess) -> None:
    port = int(live_api.proc.args[live_api.proc.args.index("--metrics-port") + 1])  # type: ignore[union-attr]
    text = send(port, build("GET", "/metrics")).body.decode()
    assert 'kubekms_keys{state="enabled"}' in text and 'kubekms_keys{state="disabled"}' in text
