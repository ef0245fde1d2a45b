"""Event-driven checks of the material Secrets: one watch on the KubeKMS namespace.

Instead of re-reading every key's Secret on a short timer, the operator watches the Secrets that
carry the key-id label (in its own namespace only, which is all its Role allows) and converges a
KmsKey the moment its Secret:
- is deleted: the key turns Degraded within seconds (converge never mints replacement material);
- loses material: a `version-<n>` entry removed or replaced, or another key-id, kek-id or
  algorithm (changes the operator never makes itself; rotation only adds a version);
- appears or changes while its key is Degraded: restored material makes the key Ready again.
Other events (a burst of new keys, rotations, adoptions) cost nothing but bookkeeping. The key is
found through `rt.index` (what the reconciler last bound it to), else through the Secret's owner
labels (never for an orphaned Secret, whose KmsKey is gone, nor for a namespace this operator
does not watch).

Like client-go's reflector: list, then watch from the list's resourceVersion; a stream that ends
or drops is resumed from the last resourceVersion seen (bookmarks included); 410 Gone or an API
error means list again, with capped exponential backoff; a relist is compared with what was known
so nothing that happened while the watch was down is missed. Nothing here ever ends the operator:
interruptions are logged at WARNING, events at DEBUG.

Security property: only names and a per-process hash of each sealed blob are kept (to notice a
replaced version); nothing from a Secret is logged.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from kms_kube import layout as m
from kms_kube.client import Gone, KubeError
from kms_kube.layout import secrets_path
from kms_operator import events, reconcile
from kms_operator.context import Runtime
from kms_operator.keyindex import KeyRef
from kms_operator.workqueue import KeyQueue

log = logging.getLogger("kubekms.operator.secretwatch")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the watch remembers of a material Secret."""

    identity: tuple[str | None, str | None, str | None]  # key-id label, kek-id, algorithm
    material: frozenset[tuple[str, int]]  # (version-<n>, hash of its sealed blob)
    owner: KeyRef | None  # from the owner labels; None once orphaned

    @classmethod
    def of(cls, secret: dict[str, Any]) -> Fingerprint:
        labels, notes = m.labels_of(secret), m.annotations_of(secret)
        data = secret.get("data") or {}
        owner_ns, owner_name = labels.get(m.OWNER_NAMESPACE), labels.get(m.OWNER_NAME)
        return cls(
            identity=(labels.get(m.KEY_ID), notes.get(m.KEK_ID), notes.get(m.ALGORITHM)),
            material=frozenset((k, hash(v)) for k, v in data.items() if k.startswith("version-")),
            owner=(owner_ns, owner_name) if owner_ns and owner_name and m.ORPHANED not in labels else None,
        )

    def lost_material(self, new: Fingerprint) -> bool:
        """`new` dropped or replaced a version, or names another key, kek or algorithm."""
        return not self.material <= new.material or self.identity != new.identity


class SecretWatch:
    """The watch, the known Secrets, and the queue of keys to converge; `run()` until cancelled."""

    def __init__(
        self, rt: Runtime, *, retry_delay: float = 0.5, max_retry_delay: float = 30, timeout: int = 300
    ) -> None:
        self.rt = rt
        self.path = secrets_path(rt.settings.namespace)
        self.params = {"labelSelector": m.KEY_ID}  # existence: material Secrets only
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.timeout = timeout
        self.queue = KeyQueue(self._converge)
        self.known: dict[str, Fingerprint] = {}
        self.rv = ""  # where the watch resumes; "": list first
        self.relists = 0
        self.watches = 0

    async def run(self) -> None:
        events.post_directly(self.rt.api)  # outside Kopf's handlers: no Kopf event queue here
        workers = asyncio.create_task(self.queue.run(), name="kmskey-secret-checks")
        try:
            await self._follow()
        finally:
            workers.cancel()
            await asyncio.gather(workers, return_exceptions=True)

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.retry_delay
        while True:
            started = loop.time()
            try:
                if not self.rv:
                    self.rv = await self._relist()
                await self._watch()
                reason = "" if loop.time() - started > 1 else "the stream ended at once"
            except Gone as e:
                self.rv, reason = "", f"resourceVersion expired ({e.reason}); listing again"
            except KubeError as e:
                # Like client-go's reflector: any failure but 410 resumes from the last
                # resourceVersion seen (a stale one answers 410 and leads to a relist).
                reason = str(e)
            except Exception as e:  # never end the operator; the periodic check still runs
                log.debug("Secret watch failed", exc_info=True)  # the type only at WARNING
                self.rv, reason = "", f"unexpected {type(e).__name__}"
            if loop.time() - started > 10:
                delay = self.retry_delay  # it worked for a while: this is a new incident
            if not reason:
                continue  # the server's watch timeout: resume at once
            log.warning("Secret watch interrupted: %s; retrying in %.1fs", reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    async def _relist(self) -> str:
        items, rv = await self.rt.api.list_all(self.path, self.params)
        fresh = {str(s["metadata"]["name"]): Fingerprint.of(s) for s in items}
        for name in self.known.keys() - fresh.keys():  # deleted while the watch was down
            self._changed(name, self.known[name], None)
        for name, fingerprint in fresh.items():
            if self.known.get(name) != fingerprint:
                self._changed(name, self.known.get(name), fingerprint)
        self.known = fresh
        self.relists += 1
        log.debug("Secret watch listed %d material Secrets at resourceVersion %s", len(fresh), rv)
        return rv

    async def _watch(self) -> None:
        """Apply events from `self.rv` until the stream ends, moving `self.rv` along."""
        params = {**self.params, "allowWatchBookmarks": "true", "resourceVersion": self.rv}
        self.watches += 1
        async for event in self.rt.api.watch(self.path, params, timeout_seconds=self.timeout):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                continue
            meta = obj.get("metadata") or {}
            self.rv = str(meta.get("resourceVersion") or self.rv)
            if kind == "BOOKMARK" or not meta.get("name"):
                continue
            name = str(meta["name"])
            log.debug("Secret %s: %s", name, kind)
            if kind == "DELETED":
                self._changed(name, self.known.pop(name, None) or Fingerprint.of(obj), None)
            else:
                new = Fingerprint.of(obj)
                old, self.known[name] = self.known.get(name), new
                self._changed(name, old, new)

    def _changed(self, name: str, old: Fingerprint | None, new: Fingerprint | None) -> None:
        bound = self.rt.index.owner(name)
        if new is None or (old is not None and old.lost_material(new)):
            labelled = (old.owner if old else None) or (new.owner if new else None)
            target = bound or (labelled if labelled and self._watched(labelled[0]) else None)
        else:  # added, or changed harmlessly: only a key waiting for this Secret cares
            target = bound if bound and self.rt.index.degraded(bound) else None
        if target is not None:
            log.debug("Secret %s changed: checking KmsKey %s/%s", name, *target)
            self.queue.add(target)

    def _watched(self, namespace: str) -> bool:
        """Whether this operator handles KmsKeys in `namespace` (KUBEKMS_WATCH_NAMESPACES globs)."""
        patterns = self.rt.settings.watch_namespaces
        return not patterns or any(fnmatch.fnmatchcase(namespace, p) for p in patterns)

    async def _converge(self, key: KeyRef) -> None:
        """Converge one key now; API errors are retried a few times, then left to the periodic check."""
        delay = self.retry_delay
        for _attempt in range(6):
            try:
                await reconcile.converge(self.rt, key[0], key[1], _KeyLogger(log, key))
                return
            except kopf.TemporaryError as e:
                log.debug("KmsKey %s/%s: %s; retrying in %.1fs", *key, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
        log.warning("KmsKey %s/%s: not checked after its Secret changed; left to the periodic check", *key)


class _KeyLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes messages with the KmsKey, as Kopf's per-object logger does in handlers."""

    def __init__(self, logger: logging.Logger, key: KeyRef) -> None:
        super().__init__(logger, {})
        self.prefix = f"[{key[0]}/{key[1]}] "

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return self.prefix + str(msg), kwargs
