"""The list-keys pages of Kubernetes mode: a per-namespace sorted index of live KmsKey names.

`NameIndex` listens to the KmsKey cache and keeps, for every namespace (project), the names of the
keys that are live (`kmskey.is_live`: they have material and are not being deleted) in a
`SortedList`. A page without `search` is then two positional slices, O(log N + page size) however
deep the offset; a page with `search` scans only that namespace's names, in order. Results are
exactly those of filtering and sorting every cached object: order by name (code-point order),
ascending or descending, `offset`/`limit` after the search, and the total count of matches.
Security property: the index holds object names only; never key material or Secret contents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from sortedcontainers import SortedList

from kms_api.kube import kmskey as kk
from kms_core.stores.base import ListQuery
from kms_kube.client import JsonDict


class NameIndex:
    """Sorted live names per namespace, kept current as an `ObjectCache` listener."""

    def __init__(self, live: Callable[[JsonDict], bool] = kk.is_live) -> None:
        self._live = live
        self._names: dict[str, SortedList[str]] = {}

    # ---- CacheListener -------------------------------------------------------------------------
    def changed(self, old: JsonDict | None, new: JsonDict | None) -> None:
        if old is not None and self._live(old):
            ns, name = _name(old)
            names = self._names.get(ns)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._names[ns]
        if new is not None and self._live(new):
            ns, name = _name(new)
            names = self._names.setdefault(ns, SortedList())
            if name not in names:  # a namespace's names are unique; stay a set under any replay
                names.add(name)

    def reset(self, objects: Iterable[JsonDict]) -> None:
        grouped: dict[str, list[str]] = {}
        for obj in objects:
            if self._live(obj):
                ns, name = _name(obj)
                grouped.setdefault(ns, []).append(name)
        self._names = {ns: SortedList(names) for ns, names in grouped.items()}

    # ---- queries -------------------------------------------------------------------------------
    def count(self, namespace: str) -> int:
        names = self._names.get(namespace)
        return len(names) if names is not None else 0

    def page(self, query: ListQuery) -> tuple[list[str], int]:
        """The names on one page of `query` and the number of all matches in its namespace."""
        names = self._names.get(query.project_id)
        if names is None:
            return [], 0
        if query.search:
            pattern = ilike(query.search)
            ordered = reversed(names) if query.descending else iter(names)
            matches = [n for n in ordered if pattern.search(n)]
            return matches[query.offset:query.offset + query.limit], len(matches)
        total = len(names)
        if query.offset >= total:
            return [], total
        if query.descending:
            # Position i from the end is index total-1-i: the page is a reversed ascending slice.
            stop = total - query.offset
            start = max(stop - query.limit, 0)
            return list(names.islice(start, stop, reverse=True)), total
        return list(names.islice(query.offset, query.offset + query.limit)), total


def ilike(search: str) -> re.Pattern[str]:
    """SQL ILIKE '%search%' with `%` and `_` as wildcards (spec §2.4 quirk), as a regex."""
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in search.strip()]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _name(obj: JsonDict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
