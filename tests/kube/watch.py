"""Watch streams: resumable from a resourceVersion, 410 Expired when too old, BOOKMARKs, cuttable.

A watch from resourceVersion N replays every logged event after N, then streams live ones; without
one (or "0") it starts with ADDED for every current object. `cut_watches()` abruptly closes all
open watch connections, as an API server restart or a network drop would.

Security property: none (test infrastructure).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web
import kmock
from kmock._internal import rendering

from kube import compat


class WatchStreams:
    """A mixin for `KubeEmulator`: the watch endpoint (uses its attrs fields)."""

    objects: Any
    resources: Any
    bookmark_interval: float
    _lock: Any
    _rv: int
    _floor: int
    _log: Any
    _changed: Any
    _streams: dict[int, aiohttp.web.BaseRequest]

    async def _watch(
        self, request: rendering.Request, res: kmock.resource, ns: str | None
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        labels, fields = params.get("labelSelector"), params.get("fieldSelector")
        if request.name:
            fields = ",".join(filter(None, [fields, f"metadata.name={request.name}"]))
        timeout = float(params.get("timeoutSeconds") or 1800)
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        since = params.get("resourceVersion") or "0"

        def wanted(obj: Mapping[str, Any]) -> bool:
            in_ns = ns is None or obj.get("metadata", {}).get("namespace") == ns
            return in_ns and compat.matches_selectors(obj, labels, fields)

        initial: list[dict[str, Any]] = []
        async with self._lock:
            if since == "0":
                initial = [
                    {"type": "ADDED", "object": copy.deepcopy(o.raw)}
                    for (r, _, _), o in self.objects.items()
                    if r == res and not o.deleted and wanted(o.raw)
                ]
                cursor = self._rv
            else:
                cursor = int(since) if since.isdigit() else 0
            expired = cursor < self._floor
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        self._streams[id(raw)] = raw
        try:
            if expired:
                gone = compat.status_body(
                    410, "Expired", f"too old resource version: {since} ({self._floor})"
                )
                await _write(response, [{"type": "ERROR", "object": gone}])
                return response
            await _write(response, initial)
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                batch: list[dict[str, Any]] = []
                async with self._changed:
                    batch = self._events_after(cursor, res, wanted)
                    newest = self._rv
                    if not batch:
                        try:
                            await asyncio.wait_for(
                                self._changed.wait(), min(remaining, self.bookmark_interval)
                            )
                        except TimeoutError:
                            if bookmarks:
                                gv = f"{res.group}/{res.version}" if res.group else res.version
                                kind = str(self.resources[res].kind)
                                mark = {
                                    "apiVersion": gv,
                                    "kind": kind,
                                    "metadata": {"resourceVersion": str(newest)},
                                }
                                batch = [{"type": "BOOKMARK", "object": mark}]
                        else:
                            continue
                cursor = newest
                await _write(response, batch)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away or the test cut the connection
        finally:
            self._streams.pop(id(raw), None)
        return response

    def _events_after(
        self, cursor: int, res: Any, wanted: Callable[[Mapping[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        """The log's events newer than `cursor` for `res` that `wanted` accepts, oldest first.

        The log is in resourceVersion order, so it is read backwards and only as far as the
        cursor: a watcher that is up to date costs O(new events), not a scan of the whole log
        on every wake-up (which made every write cost O(log size x watchers))."""
        found: list[dict[str, Any]] = []
        for rv, r, event in reversed(self._log):
            if rv <= cursor:
                break
            if r == res and wanted(event["object"]):
                found.append(event)
        found.reverse()
        return found

    async def cut_watches(self) -> int:
        """Abruptly close every open watch connection (as an API server restart would)."""
        cut = 0
        for raw in list(self._streams.values()):
            if raw.transport is not None:
                raw.transport.close()
                cut += 1
        self._streams.clear()
        return cut

    @property
    def open_watches(self) -> int:
        return len(self._streams)


async def _write(response: aiohttp.web.StreamResponse, events: list[dict[str, Any]]) -> None:
    if events:
        await response.write(b"".join(json.dumps(e).encode() + b"\n" for e in events))
