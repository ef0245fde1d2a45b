"""Watch-fed caches of Kubernetes objects (an informer): list, then watch; resume the watch after
an interruption and list again only after 410 Gone, like client-go's reflector.

The API answers reads from these caches so a warm key costs no API-server round trip. Each cache
keeps secondary indexes (e.g. keyId -> KmsKey), tells listeners about every change (e.g. the sorted
name index behind list pages) and lets writers wait for a condition (a key becoming Ready, a
version increasing). The initial list is paginated like client-go's reflector (`limit` and
`continue`, restarted from scratch when a continue token expires), so a large collection or a slow
API server never has to fit in one request's timeout.
Security property: objects are kept as the API server sent them (Secrets hold sealed blobs only);
nothing from them is logged, only counts and error reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from kms_kube.client import ApiError, ContinueExpired, Gone, JsonDict, KubeClient, KubeUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Indexer = Callable[[JsonDict], str | None]
ObjKey = tuple[str, str]  # (namespace, name)


def object_key(obj: JsonDict) -> ObjKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def strip_managed_fields(obj: JsonDict) -> JsonDict:
    """Drop `metadata.managedFields` (server-side apply bookkeeping, often larger than the rest of
    the object) before caching, like client-go's informers with a transform: KubeKMS never reads it."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        del meta["managedFields"]
    return obj


class CacheListener(Protocol):
    """Told about every change of a cache's contents, synchronously, before waiters wake up."""

    def changed(self, old: JsonDict | None, new: JsonDict | None) -> None:
        """One object replaced (`old` -> `new`), added (`old` None) or removed (`new` None)."""

    def reset(self, objects: Iterable[JsonDict]) -> None:
        """The whole contents replaced (a full list arrived)."""


def _rv(obj: JsonDict) -> int | None:
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


class ObjectCache:
    """All objects of one collection (`list_path`) kept current by a background watch.

    `accept` filters objects client-side (a label selector the server may also apply); `indexers`
    map an object to a secondary key; `object_path(ns, name)` is used to read through on a miss.
    `page_size` is the `limit` of each list request (0: one unpaginated request).
    """

    def __init__(
        self,
        client: KubeClient,
        name: str,
        list_path: str,
        object_path: Callable[[str, str], str],
        *,
        params: dict[str, str] | None = None,
        accept: Callable[[JsonDict], bool] = lambda _obj: True,
        indexers: dict[str, Indexer] | None = None,
        transform: Callable[[JsonDict], JsonDict] | None = None,
        retry_delay: float = 0.5,
        max_retry_delay: float = 5.0,
        page_size: int = 500,
        watch_timeout: int = 300,
    ) -> None:
        self.client = client
        self.name = name
        self.list_path = list_path
        self.object_path = object_path
        self.params = params or {}
        self.accept = accept
        self.indexers = indexers or {}
        self.transform = transform or strip_managed_fields
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.page_size = page_size
        self.synced = False  # at least one full list has been loaded
        self.healthy = False  # the watch is currently connected
        self.relists = 0  # full lists loaded
        self.list_restarts = 0  # lists started over because a continue token expired (410)
        self.watch_timeout = watch_timeout  # seconds the server keeps one watch stream open
        self.watches = 0  # watch requests made (a normally ended stream is resumed, not relisted)
        self._objects: dict[ObjKey, JsonDict] = {}
        self._indexes: dict[str, dict[str, ObjKey]] = {n: {} for n in self.indexers}
        self._listeners: list[CacheListener] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_rv = ""  # the newest resourceVersion seen by the current watch

    # ---- reading -------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> JsonDict | None:
        return self._objects.get((namespace, name))

    def lookup(self, index: str, value: str) -> JsonDict | None:
        key = self._indexes[index].get(value)
        return self._objects.get(key) if key is not None else None

    def values(self) -> Iterable[JsonDict]:
        return list(self._objects.values())

    def add_listener(self, listener: CacheListener) -> None:
        """Register `listener` and bring it up to date with the current contents at once."""
        self._listeners.append(listener)
        listener.reset(self._objects.values())

    async def read_through(self, namespace: str, name: str) -> JsonDict | None:
        """GET one object from the API server (a cache miss), store it and return it; None if absent."""
        try:
            obj = await self.client.get(self.object_path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                self.remove(namespace, name)
                return None
            raise
        self.put(obj)
        return obj if self.accept(obj) else None

    async def wait_for(self, probe: Callable[[], T | None], within: float) -> T:
        """Return probe()'s first non-None result, re-evaluated after every change; TimeoutError."""
        async with asyncio.timeout(within):
            while True:
                event = self._changed
                result = probe()
                if result is not None:
                    return result
                await event.wait()

    # ---- writing (watch events and the API's own write responses) ------------------------------
    def put(self, obj: JsonDict) -> None:
        obj = self.transform(obj)
        key = object_key(obj)
        if not self.accept(obj):
            self.remove(*key)
            return
        old = self._objects.get(key)
        old_rv, new_rv = (_rv(old), _rv(obj)) if old is not None else (None, None)
        if old_rv is not None and new_rv is not None and new_rv < old_rv:
            return  # a stale event arriving after our own newer write response
        self._store(key, obj)
        for listener in self._listeners:
            listener.changed(old, obj)
        self._notify()

    def remove(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key)
            del self._objects[key]
            for listener in self._listeners:
                listener.changed(old, None)
            self._notify()

    def _store(self, key: ObjKey, obj: JsonDict) -> None:
        self._unindex(key)
        self._objects[key] = obj
        for index, fn in self.indexers.items():
            value = fn(obj)
            if value:
                self._indexes[index][value] = key

    def _unindex(self, key: ObjKey) -> None:
        old = self._objects.get(key)
        if old is None:
            return
        for index, fn in self.indexers.items():
            value = fn(old)
            if value and self._indexes[index].get(value) == key:
                del self._indexes[index][value]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _replace(self, items: list[JsonDict]) -> None:
        self._objects.clear()
        for index in self._indexes.values():
            index.clear()
        for item in items:
            obj = self.transform(item)
            if self.accept(obj):
                self._store(object_key(obj), obj)
        for listener in self._listeners:
            listener.reset(self._objects.values())
        self._notify()

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"cache-{self.name}")

    async def wait_synced(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: True if self.synced else None, within)
        return self.synced

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.healthy = False

    async def _run(self) -> None:
        delay = self.retry_delay
        resume: str | None = None  # where the next watch starts; None: list first
        while True:
            started = asyncio.get_running_loop().time()
            try:
                if resume is None:
                    resume = await self._list_into_cache()
                # A stream that ends normally (the server's watch timeout, every few minutes) is
                # resumed from the last resourceVersion seen, as client-go's reflector does:
                # relisting 100k keys every five minutes would cost the API server far more.
                resume = await self._watch(resume)
                if asyncio.get_running_loop().time() - started > 1.0:
                    delay = self.retry_delay
                    continue
                await asyncio.sleep(delay)  # it ended at once: do not spin
                delay = min(delay * 2, self.max_retry_delay)
            except (KubeUnavailable, ApiError, ValueError) as exc:
                # Keep serving the last known state. Like client-go's reflector, only 410 Gone
                # (the resourceVersion was compacted away) forces a new list; after a dropped
                # connection, a 5xx or a throttled watch the next watch resumes where this one
                # stopped (a resourceVersion that turned stale answers 410 then).
                if isinstance(exc, Gone) or resume is None or isinstance(exc, ValueError):
                    resume = None
                else:
                    resume = self._last_rv or resume
                self.healthy = False
                reason = exc.reason if isinstance(exc, ApiError) else type(exc).__name__
                then = "relisting" if resume is None else "resuming the watch"
                log.warning("cache %s: watch interrupted (%s); %s in %.1fs", self.name, reason, then, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)

    async def _list(self) -> tuple[list[JsonDict], str]:
        """The whole collection, paginated, and the resourceVersion the watch resumes from.

        An expired continue token starts the list over at once: it is the normal outcome of a
        list slower than the server's compaction window, not a failure to back off from.
        """
        while True:
            try:
                return await self.client.list_all(
                    self.list_path, self.params, page_size=self.page_size, transform=self.transform
                )
            except ContinueExpired:
                self.list_restarts += 1
                log.info("cache %s: list continue token expired; listing again", self.name)

    async def _list_into_cache(self) -> str:
        """Replace the contents with a full list; returns the resourceVersion to watch from."""
        items, rv = await self._list()
        # Readers keep the previous contents until the complete list has arrived.
        self._replace(items)
        del items
        # Objects decoded from JSON hold no reference cycles, yet the cyclic collector would walk
        # every one of them on each full collection (millions of dicts at 100k keys: long pauses
        # and lost throughput). Freezing moves everything alive now to the permanent generation;
        # refcounting still frees replaced objects (only a cycle alive now that dies later would
        # stay). Done here, once per full list: the one moment the cache gains objects in bulk.
        # Collect first: garbage cycles still pending (the list's HTTP responses, for instance)
        # would otherwise be frozen too, and never freed.
        gc.collect()
        gc.freeze()
        self.synced = True
        self.relists += 1
        return rv

    async def _watch(self, rv: str) -> str:
        """Apply watch events from `rv` until the server ends the stream; returns the last
        resourceVersion seen (bookmarks included), where the next watch resumes."""
        params = {**self.params, "allowWatchBookmarks": "true"}
        if rv.isdigit():
            params["resourceVersion"] = rv
        self.healthy = True
        self.watches += 1
        self._last_rv = rv
        async for event in self.client.watch(self.list_path, params, timeout_seconds=self.watch_timeout):
            kind, obj = event.get("type"), event.get("object") or {}
            if not isinstance(obj, dict):
                continue
            seen = (obj.get("metadata") or {}).get("resourceVersion")
            if isinstance(seen, str) and seen:
                rv = self._last_rv = seen
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self.remove(*object_key(obj))
            else:
                self.put(obj)
        return rv
