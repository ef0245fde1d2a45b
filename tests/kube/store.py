"""Object storage with kube-apiserver semantics, over kmock's `objects` (full history kept).

Every write stamps a new resourceVersion and publishes a watch event; updates enforce optimistic
concurrency and the server-owned metadata, bump generation on spec changes, honour the status
subresource and finalizers; no-op updates change nothing (no new resourceVersion, no event).
These coroutines are also the tests' direct access (`cluster.Cluster` wraps them for threads).

Security property: none (test infrastructure).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Mapping
from typing import Any

import kmock

from kube import compat, crds, validation

CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACES = kmock.resource("", "v1", "namespaces")
SECRETS = kmock.resource("", "v1", "secrets")
Key = tuple[kmock.resource, str | None, str]


class ObjectStore:
    """A mixin for `KubeEmulator`: object CRUD and event publishing (uses its attrs fields)."""

    objects: Any
    resources: Any
    _lock: Any
    _rv: int
    _floor: int
    _log: Any
    _changed: Any
    _custom: set[kmock.resource]
    _controllers: set[asyncio.Task[None]]
    _schemas: dict[kmock.resource, crds.Schema]
    max_secret_bytes: int

    def _key(self, res: kmock.resource, ns: str | None, name: str) -> Key:
        return (res, ns if self.resources[res].namespaced else None, name)

    def _live(self, key: Key) -> kmock.Object | None:
        if key not in self.objects:
            return None
        obj = self.objects[key]
        return None if obj.deleted else obj

    async def read_object(
        self, res: kmock.resource | str, ns: str | None, name: str
    ) -> dict[str, Any] | None:
        res = kmock.resource(res)
        async with self._lock:
            obj = self._live(self._key(res, ns, name))
            return copy.deepcopy(obj.raw) if obj is not None else None

    async def list_with_version(
        self,
        res: kmock.resource | str,
        ns: str | None = None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        res = kmock.resource(res)
        async with self._lock:
            items = [
                copy.deepcopy(obj.raw)
                for (r, o_ns, _), obj in self.objects.items()
                if r == res and not obj.deleted and (ns is None or o_ns == ns)
                if compat.matches_selectors(obj.raw, labels, fields)
            ]
            return items, self._rv

    async def list_objects(
        self, res: kmock.resource | str, ns: str | None = None, labels: str | None = None
    ) -> list[Any]:
        return (await self.list_with_version(res, ns, labels))[0]

    async def create_object(
        self, res: kmock.resource | str, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        res = kmock.resource(res)
        info = self.resources[res]
        ns = (
            (namespace or body.get("metadata", {}).get("namespace") or "default") if info.namespaced else None
        )
        gv = f"{res.group}/{res.version}" if res.group else str(res.version)
        async with self._lock:
            obj = compat.stamp_new(
                body,
                namespace=ns,
                rv=self._rv + 1,
                api_version=gv,
                kind=str(info.kind),
                generation=res in self._custom,
            )
            key = self._key(res, ns, obj["metadata"]["name"])
            if self._live(key) is not None:
                raise compat.ApiError(409, "AlreadyExists", f'{res.plural} "{key[2]}" already exists')
            if ns is not None and self._terminating(ns):
                raise compat.ApiError(
                    403, "Forbidden",
                    f'{res.plural} "{key[2]}" is forbidden: unable to create new content in namespace {ns} '
                    "because it is being terminated",
                )
            self._validate(res, obj, None)
            if res == CRDS:
                self._register_crd(obj)
            if key in self.objects:
                self.objects[key].create(obj)
            else:
                self.objects[key] = obj
            await self._publish(res, "ADDED", obj)
            return copy.deepcopy(obj)

    async def patch_object(
        self,
        res: kmock.resource | str,
        ns: str | None,
        name: str,
        patch: Any,
        *,
        content_type: str = "application/merge-patch+json",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        res = kmock.resource(res)
        async with self._lock:
            current = self._current(res, ns, name)
            new = compat.apply_patch(current, patch, content_type)
            return await self._commit(res, current, new, subresource)

    async def replace_object(
        self,
        res: kmock.resource | str,
        ns: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        res = kmock.resource(res)
        async with self._lock:
            current = self._current(res, ns, name)
            new = copy.deepcopy(dict(body))
            new.setdefault("metadata", {}).setdefault(
                "resourceVersion", current["metadata"]["resourceVersion"]
            )
            return await self._commit(res, current, new, subresource)

    async def delete_object(
        self, res: kmock.resource | str, ns: str | None, name: str, preconditions: Any = None
    ) -> dict[str, Any]:
        """DELETE, with DeleteOptions' `preconditions` (uid, resourceVersion) checked as
        kube-apiserver does: a mismatch is 409 Conflict and nothing is deleted."""
        res = kmock.resource(res)
        async with self._lock:
            current = self._current(res, ns, name)
            meta = current["metadata"]
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = preconditions.get(field) if isinstance(preconditions, dict) else None
                if wanted is not None and wanted != meta.get(field):
                    raise compat.ApiError(
                        409, "Conflict",
                        f'Operation cannot be fulfilled on {res.plural} "{name}": Precondition failed: '
                        f"{label} in precondition: {wanted}, {label} in object meta: {meta.get(field)}",
                    )
            if meta.get("deletionTimestamp"):
                return current
            if res == NAMESPACES:
                return await self._terminate_namespace(current)
            if meta.get("finalizers"):
                new = copy.deepcopy(current)
                new["metadata"]["deletionTimestamp"] = compat.now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if res in self._custom:
                    new["metadata"]["generation"] = meta.get("generation", 1) + 1
                return await self._store(res, new, "MODIFIED")
            return await self._remove(res, current)

    # -- namespace deletion: kube-controller-manager's namespace controller, in miniature --------

    def _terminating(self, ns: str) -> bool:
        found = self._live(self._key(NAMESPACES, None, ns))
        return found is not None and bool(found.raw["metadata"].get("deletionTimestamp"))

    async def _terminate_namespace(self, current: dict[str, Any]) -> dict[str, Any]:
        """DELETE of a namespace: it turns Terminating (deletionTimestamp, phase, the `kubernetes`
        finalizer); a background controller then deletes everything in it — objects with
        finalizers wait for their controllers — and removes the namespace once it is empty."""
        new = copy.deepcopy(current)
        new["metadata"]["deletionTimestamp"] = compat.now_rfc3339()
        new.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        new.setdefault("status", {})["phase"] = "Terminating"
        stored = await self._store(NAMESPACES, new, "MODIFIED")
        task = asyncio.get_running_loop().create_task(self._empty_namespace(current["metadata"]["name"]))
        self._controllers.add(task)
        task.add_done_callback(self._controllers.discard)
        return stored

    def _contents(self, ns: str) -> list[Key]:
        keys = list(self.objects.keys())
        return [k for k in keys if k[1] == ns and k[0] != NAMESPACES and self._live(k) is not None]

    async def _empty_namespace(self, ns: str, interval: float = 0.1) -> None:
        asked: set[Key] = set()
        while True:
            contents = self._contents(ns)
            if not contents:
                break
            for key in contents:
                if key not in asked:
                    asked.add(key)
                    with contextlib.suppress(compat.ApiError):
                        await self.delete_object(key[0], key[1], key[2])
            await asyncio.sleep(interval)
        async with self._lock:
            current = self._live(self._key(NAMESPACES, None, ns))
            if current is not None:
                await self._remove(NAMESPACES, copy.deepcopy(current.raw))

    def _current(self, res: kmock.resource, ns: str | None, name: str) -> dict[str, Any]:
        obj = self._live(self._key(res, ns, name))
        if obj is None:
            raise not_found(res, name)
        return copy.deepcopy(obj.raw)

    async def _commit(
        self, res: kmock.resource, current: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        """Enforce the server-owned parts of an update, then store it (or nothing, for a no-op)."""
        meta, old_meta = new.setdefault("metadata", {}), current["metadata"]
        if str(meta.get("resourceVersion", old_meta["resourceVersion"])) != old_meta["resourceVersion"]:
            raise compat.ApiError(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if "status" in self.resources[res].subresources:
            # The status subresource: each endpoint changes only its own half of the object.
            if subresource == "status":
                new = {**current, "status": new.get("status")}
                meta = new["metadata"] = copy.deepcopy(old_meta)
            else:
                new["status"] = current.get("status")
            if new.get("status") is None:
                new.pop("status", None)
        for owned in (
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
            "generation",
            "resourceVersion",
            "deletionGracePeriodSeconds",
        ):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        new["apiVersion"], new["kind"] = current["apiVersion"], current["kind"]
        if new == current:
            return current  # a no-op: no new resourceVersion, no watch event (as the real server)
        if res in self._custom and compat.spec_changed(current, new):
            meta["generation"] = old_meta.get("generation", 1) + 1
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return await self._remove(res, new)
        self._validate(res, new, current)
        return await self._store(res, new, "MODIFIED")

    def _validate(self, res: kmock.resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """The CRD's schema and CEL rules, or a Secret's size limit: 422 Invalid with causes."""
        causes: list[validation.Cause] = []
        kind, group = "", ""
        if res in self._schemas:
            schema = self._schemas[res]
            causes = validation.schema_causes(schema.openapi, obj, old)
            kind, group = schema.kind, res.group or ""
        elif res == SECRETS:
            causes = validation.secret_causes(obj, self.max_secret_bytes)
            kind, group = "Secret", ""
        if causes:
            raise validation.invalid(kind, group, obj["metadata"]["name"], causes)

    async def _store(self, res: kmock.resource, obj: dict[str, Any], event: str) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = str(self._rv + 1)
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.objects[key].history.append(copy.deepcopy(obj))
        await self._publish(res, event, obj)
        return copy.deepcopy(obj)

    async def _remove(self, res: kmock.resource, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._rv + 1)
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.objects[key].history.append(copy.deepcopy(obj))
        self.objects[key].delete()
        if res == CRDS:
            self._unregister_crd(obj)
        await self._publish(res, "DELETED", obj)
        return obj

    async def _publish(self, res: kmock.resource, kind: str, obj: dict[str, Any]) -> None:
        # Advance the resourceVersion and log the event in one synchronous step (no await in
        # between): a watcher that takes `_rv` as its new cursor must never skip an event that is
        # not logged yet, and two writers must never share a resourceVersion.
        self._rv += 1
        if len(self._log) == self._log.maxlen:
            self._floor = self._log[0][0]
        self._log.append((self._rv, res, {"type": kind, "object": copy.deepcopy(obj)}))
        async with self._changed:
            self._changed.notify_all()

    def _register_crd(self, crd: dict[str, Any]) -> None:
        schemas = crds.schemas(crd)
        for res, info in crds.served(crd).items():
            self.resources[res] = info
            self._custom.add(res)
            if res in schemas:
                self._schemas[res] = schemas[res]
        crd["status"] = crds.established(crd)

    def _unregister_crd(self, crd: Mapping[str, Any]) -> None:
        for res in crds.served(crd):
            self._custom.discard(res)
            self._schemas.pop(res, None)
            if res in self.resources:
                del self.resources[res]


def not_found(res: kmock.resource, name: str) -> compat.ApiError:
    return compat.ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
