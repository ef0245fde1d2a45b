"""An emulated Kubernetes API server for the operator and API tests, built on kmock.

`KubeEmulator` subclasses `kmock.KubernetesEmulator` and keeps kmock's parts that work for real
clients: request parsing, the aiohttp server on a random port, API discovery (`/api`, `/apis`,
`/apis/<group>[/<version>]`, fed from kmock's bundled built-in resources plus every CRD created at
run time, see `crds.py`) and the `objects` store with each object's full history. It replaces
kmock's handlers for resources with kube-apiserver behaviour, in small documented parts:
- `compat.py`: the kmock 0.8 gaps (namespaces path parsing, metadata stamping, merge/JSON patches
  with a failed `test` -> 422, label/field selectors, `Status` bodies);
- `store.py`: resourceVersions, generation, status subresource, finalizers and deletionTimestamp,
  optimistic concurrency (409), create-if-absent (409 AlreadyExists), no-op updates, namespace
  deletion (Terminating, contents deleted honouring finalizers, 403 for new content, then gone);
- `watch.py`: watches resumable from a resourceVersion (410 Expired), BOOKMARKs, `cut_watches()`;
- `pages.py`: paginated lists (`limit`/`continue`, `remainingItemCount`), every page served as
  of the first page's resourceVersion (rebuilt from object history), expired tokens 410,
  malformed ones 400;
- `faults.py`: 503s, any given `Status` (e.g. a webhook's 403) and delays on demand;
  `rbac.py`: TokenReview and SubjectAccessReview;
- `validation.py`: custom resources checked against their CRD's structural schema and CEL rules,
  Secrets against the 1 MiB data limit, request bodies against 3 MiB: 422 Invalid with
  `details.causes` (FieldValueInvalid, FieldValueRequired, FieldValueTooLong...) or 413;
- Leases (`coordination.k8s.io/v1`, from kmock's bundled discovery) are stored like any object:
  create-if-absent (409 AlreadyExists) and updates guarded by resourceVersion (409 Conflict).
Lists are typed (`KmsKeyList`, apiVersion, metadata.resourceVersion). Writes that reached the
server complete even if their client dies (crash tests rely on this). kmock records every request
it served (`list(emulator)`: method, url, params), which tests use to count requests.

Not emulated (tests must not rely on them): defaulting of custom resources, server-side apply,
Table output (kubectl shows NAME/AGE only), owner-reference garbage collection, lists served from
a watch cache (`resourceVersion` on a list is ignored: every list is a consistent read of the
latest state; the inconsistent continue token a real server offers with a 410 is not offered),
authentication of the emulator's own callers unless `authenticate_callers=True` (then only the
admin token and live ServiceAccount tokens of `rbac` are accepted, anything else is 401;
`Cluster(tls=True)` serves HTTPS too).

Test controls: the coroutines `create_object`, `read_object`, `list_objects`, `patch_object`,
`replace_object`, `delete_object`, `cut_watches` (on the emulator's loop), `faults`, `rbac`,
`list_hook` (an async callable awaited on the emulator's loop before each list is served; tests
set it on `cluster.emulator` to write between two pages); `cluster.Cluster` runs the emulator in a
thread and wraps the coroutines as plain methods.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import importlib.resources
import json
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps, rendering

from kube import compat, crds, validation
from kube.faults import Faults
from kube.pages import ListHook, ListPages, Snapshot, SnapshotKey
from kube.rbac import Rbac
from kube.store import ObjectStore, not_found
from kube.watch import WatchStreams

compat.install()

TOKENREVIEWS = kmock.resource("authentication.k8s.io", "v1", "tokenreviews")
ACCESSREVIEWS = kmock.resource("authorization.k8s.io", "v1", "subjectaccessreviews")


@attrs.define(kw_only=True)
class KubeEmulator(ObjectStore, WatchStreams, ListPages, kmock.KubernetesEmulator):
    """kmock's emulator with kube-apiserver semantics for resources (see the module docstring)."""

    rbac: Rbac = attrs.field(factory=Rbac)
    faults: Faults = attrs.field(factory=Faults)
    bookmark_interval: float = 10.0
    log_size: int = 5000
    list_snapshots: int = 8  # consistent list snapshots kept for continue pages (0: rebuild each)
    list_hook: ListHook | None = None
    authenticate_callers: bool = False  # answer 401 to callers without a token `rbac` accepts
    max_secret_bytes: int = validation.MAX_SECRET_BYTES  # tests may lower it to reach it quickly
    _rv: int = attrs.field(default=1, init=False)
    _floor: int = attrs.field(default=0, init=False)  # watches from an older resourceVersion: 410
    _log: collections.deque[tuple[int, kmock.resource, dict[str, Any]]] = attrs.field(init=False)
    _changed: asyncio.Condition = attrs.field(factory=asyncio.Condition, init=False)
    _streams: dict[int, aiohttp.web.BaseRequest] = attrs.field(factory=dict, init=False)
    _custom: set[kmock.resource] = attrs.field(factory=set, init=False)
    _schemas: dict[kmock.resource, crds.Schema] = attrs.field(factory=dict, init=False)
    _inflight: set[asyncio.Future[aiohttp.web.StreamResponse]] = attrs.field(factory=set, init=False)
    _controllers: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)
    _snapshots: collections.OrderedDict[SnapshotKey, Snapshot] = attrs.field(
        factory=collections.OrderedDict, init=False
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._log = collections.deque(maxlen=self.log_size)
        # kmock's bundled discovery data for built-in resources (load_bundled() uses a deprecated API).
        bundled = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
        self.resources.load_data(gzip.decompress(bundled))

    # -- HTTP entry point ---------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # aiohttp refuses bodies over 1 MiB with a bare 413 before any handler runs; kube-apiserver
        # accepts up to 3 MiB (and answers a Status above). aiohttp reads the limit from this
        # attribute when the body is read, which kmock does after this point.
        raw_request._client_max_size = 2 * validation.MAX_REQUEST_BYTES
        response: aiohttp.web.StreamResponse = await super().__call__(raw_request)
        return response

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.method.value == "GET":
            return await self._serve(request)
        # A write that reached the server completes even if its client dies meanwhile (as with
        # kube-apiserver); aiohttp would cancel the handler. Crash tests rely on this.
        work = asyncio.ensure_future(self._serve(request))
        self._inflight.add(work)
        work.add_done_callback(self._inflight.discard)
        return await asyncio.shield(work)

    async def _serve(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if self.authenticate_callers and not self.rbac.authenticates(_bearer(request.headers)):
            return _json(compat.status_body(401, "Unauthorized", "Unauthorized"), 401)
        delay, failure = self.faults.check(request.method.value, request.url.path)
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            return _json(failure, int(failure["code"]))
        if len(request.body) > validation.MAX_REQUEST_BYTES:
            error = validation.too_large()
            return _json(compat.status_body(error.code, error.reason, error.message), error.code)
        res = request.resource
        if res is None or res.plural is None or res.version is None:
            # Discovery and anything else: kmock's own reactions and fallbacks.
            return await apps.RawHandler._handle(self, request)
        try:
            return await self._route(request, res)
        except compat.ApiError as e:
            details: dict[str, Any] = e.details or {"name": request.name or "", "kind": res.plural}
            if e.causes:
                details["causes"] = e.causes
            return _json(compat.status_body(e.code, e.reason, e.message, details), e.code)

    async def _route(self, request: rendering.Request, res: kmock.resource) -> aiohttp.web.StreamResponse:
        if res not in self.resources:
            raise compat.ApiError(404, "NotFound", f"the server could not find the resource {res.plural}")
        method, data, name = request.method.value, request.data, request.name
        if res == TOKENREVIEWS and method == "POST":
            return _json(self.rbac.token_review(data or {}), 201)
        if res == ACCESSREVIEWS and method == "POST":
            return _json(self.rbac.access_review(data or {}), 201)
        ns = request.namespace if self.resources[res].namespaced else None
        sub = request.subresource
        if sub not in (None, "status"):
            raise compat.ApiError(404, "NotFound", f"subresource {sub} is not supported")
        if method == "GET" and request.params.get("watch") in ("true", "1"):
            return await self._watch(request, res, ns)
        if method == "GET" and name:
            obj = await self.read_object(res, ns, name)
            if obj is None:
                raise not_found(res, name)
            return _json(obj)
        if method == "GET":
            return _json(await self.list_body(res, ns, request.params))
        if method == "DELETE" and name:
            options = data if isinstance(data, dict) else {}
            return _json(await self.delete_object(res, ns, name, options.get("preconditions")))
        if not isinstance(data, (dict, list)):
            raise compat.ApiError(400, "BadRequest", "the request body must be JSON")
        if method == "POST" and not name:
            return _json(await self.create_object(res, _as_dict(data), namespace=ns), 201)
        ctype = request.headers.get("Content-Type", "application/json")
        if method == "PATCH" and name:
            return _json(await self.patch_object(res, ns, name, data, content_type=ctype, subresource=sub))
        if method == "PUT" and name:
            return _json(await self.replace_object(res, ns, name, _as_dict(data), subresource=sub))
        raise compat.ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    async def _serve_version(self, request: rendering.Request) -> Any:
        # kmock repeats a resource's short names on its subresources; kubectl then warns that
        # "kmsk" is ambiguous with kmskeys/status.
        payload: Any = await super()._serve_version(request)
        # kmock names the core group's version "/v1"; kubectl then maps no core kind (Secret,
        # ServiceAccount, Service...) and `kubectl apply` of a rendered chart fails.
        if str(payload.get("groupVersion", "")).startswith("/"):
            payload["groupVersion"] = payload["groupVersion"].lstrip("/")
        for entry in payload.get("resources", []):
            if "/" in entry["name"]:
                entry["shortNames"], entry["categories"] = [], []
        return payload


def _json(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(body=json.dumps(payload), status=status, content_type="application/json")


def _as_dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise compat.ApiError(400, "BadRequest", "the request body must be a JSON object")
    return data


def _bearer(headers: Any) -> str | None:
    value = headers.get("Authorization") or headers.get("authorization") or ""
    return value[len("Bearer "):] if value.startswith("Bearer ") else None
