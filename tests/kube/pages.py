"""Paginated lists (`limit` / `continue`) served from one consistent snapshot, as kube-apiserver does.

A list with `limit=N` returns at most N items in (namespace, name) order (etcd's key order) and,
while more remain, `metadata.continue` plus `metadata.remainingItemCount`. Like kube-apiserver,
`remainingItemCount` is left out when a label or field selector is given (the real server cannot
count matches cheaply, so clients must not rely on it). The token is opaque to clients:
URL-safe base64 of `{"v": "meta.k8s.io/v1", "rv": <first page's resourceVersion>, "last":
[namespace, name]}`.

Every continue page is served **as of the token's resourceVersion**, and its list metadata carries
that resourceVersion: the collection's state at that point is rebuilt from each object's full
history (kmock keeps every version; a deletion stamps its resourceVersion on the version stored
just before the deletion marker). Objects created, changed or deleted after the first page
therefore do not show up on later pages; a client sees them by watching from the first page's
resourceVersion. Snapshots are memoised per (resource, namespace, selectors, resourceVersion) in a
small LRU (`list_snapshots`, 0 disables it), so paging through 100k objects costs one sort.

Errors as kube-apiserver: a token older than the compaction window (the watch log's floor, as for
watches) is 410 Expired; a malformed token, one from the future, or `continue` together with
`resourceVersion` is 400 BadRequest; a `limit` that is not an integer is 400; `limit` <= 0 means
no limit. `list_hook(resource, params)`, when set, is awaited before each list is served (tests
use it to write between two pages or to move the compaction window).

Security property: none (test infrastructure).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import kmock

from kube import compat

TOKEN_VERSION = "meta.k8s.io/v1"
SortKey = tuple[str, str]
Snapshot = tuple[list[SortKey], list[dict[str, Any]]]
SnapshotKey = tuple[kmock.resource, str | None, str | None, str | None, int]
ListHook = Callable[[kmock.resource, Mapping[str, str]], Awaitable[None]]
EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start "
    "a new list without the continue parameter."
)


def encode_token(rv: int, last: SortKey) -> str:
    raw = json.dumps({"v": TOKEN_VERSION, "rv": rv, "last": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[int, SortKey]:
    """(resourceVersion, last (namespace, name)) of a continue token; 400 if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        rv, last = data["rv"], data["last"]
        valid = (
            data.get("v") == TOKEN_VERSION
            and isinstance(rv, int) and rv > 0
            and isinstance(last, list) and len(last) == 2 and all(isinstance(p, str) for p in last)
        )
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        raise compat.ApiError(400, "BadRequest", "invalid continue token: continue key is not valid")
    return rv, (last[0], last[1])


def state_as_of(history: Iterable[Any], rv: int) -> dict[str, Any] | None:
    """An object's stored form at resourceVersion `rv`, or None if it did not exist then."""
    state: dict[str, Any] | None = None
    for version in history:
        if version is None:
            # The deletion's resourceVersion is on the version before the marker, already <= rv.
            state = None
            continue
        raw = version.raw
        stamped = str(raw.get("metadata", {}).get("resourceVersion", "0"))
        if (int(stamped) if stamped.isdigit() else 0) > rv:
            break
        state = raw
    return state


class ListPages:
    """A mixin for `KubeEmulator`: the list endpoint with pagination (uses its attrs fields)."""

    objects: Any
    resources: Any
    _lock: Any
    _rv: int
    _floor: int
    list_snapshots: int
    list_hook: ListHook | None
    _snapshots: OrderedDict[SnapshotKey, Snapshot]

    async def list_body(
        self, res: kmock.resource, ns: str | None, params: Mapping[str, str]
    ) -> dict[str, Any]:
        """The `<Kind>List` answer to a GET on a collection (see the module docstring)."""
        if self.list_hook is not None:
            await self.list_hook(res, params)
        labels, fields = params.get("labelSelector"), params.get("fieldSelector")
        limit = _limit(params.get("limit"))
        token = params.get("continue")
        async with self._lock:
            if token:
                if params.get("resourceVersion"):
                    raise compat.ApiError(
                        400, "BadRequest", "specifying resource version is not allowed when using continue"
                    )
                rv, last = decode_token(token)
                if rv > self._rv:
                    raise compat.ApiError(400, "BadRequest", "invalid continue token: a future version")
                if rv < self._floor:
                    raise compat.ApiError(410, "Expired", EXPIRED)
            else:
                rv, last = self._rv, None
            keys, items = self._snapshot(res, ns, labels, fields, rv)
        start = 0 if last is None else bisect.bisect_right(keys, last)
        end = len(items) if limit is None else min(len(items), start + limit)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if end < len(items):
            meta["continue"] = encode_token(rv, keys[end - 1])
            if not labels and not fields:
                meta["remainingItemCount"] = len(items) - end
        info = self.resources[res]
        gv = f"{res.group}/{res.version}" if res.group else res.version
        # Stored versions are never mutated in place (every write appends a new one), so the
        # page can be serialised from them directly.
        return {"apiVersion": gv, "kind": f"{info.kind}List", "metadata": meta, "items": items[start:end]}

    def _snapshot(
        self, res: kmock.resource, ns: str | None, labels: str | None, fields: str | None, rv: int
    ) -> Snapshot:
        key: SnapshotKey = (res, ns, labels, fields, rv)
        if key in self._snapshots:
            self._snapshots.move_to_end(key)
            return self._snapshots[key]
        current = rv == self._rv
        found: list[tuple[SortKey, dict[str, Any]]] = []
        for (r, o_ns, name), obj in self.objects.items():
            if r != res or (ns is not None and o_ns != ns):
                continue
            state = (None if obj.deleted else obj.raw) if current else state_as_of(obj.history, rv)
            if state is not None and compat.matches_selectors(state, labels, fields):
                found.append(((o_ns or "", name), state))
        found.sort(key=lambda entry: entry[0])
        snapshot: Snapshot = ([k for k, _ in found], [o for _, o in found])
        if self.list_snapshots > 0:
            self._snapshots[key] = snapshot
            while len(self._snapshots) > self.list_snapshots:
                self._snapshots.popitem(last=False)
        return snapshot


def _limit(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        limit = int(value)
    except ValueError:
        raise compat.ApiError(400, "BadRequest", f"invalid limit: {value!r} is not an integer") from None
    return limit if limit > 0 else None
