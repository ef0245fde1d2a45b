"""The compatibility layer that bends kmock 0.8 into an API server real clients can drive.

kmock's `KubernetesEmulator` stores objects and merges patches, but real clients (Kopf, kubectl,
the KubeKMS API's watch cache) rely on server behaviour it leaves out. Each gap is fixed here, in
one small function, so the emulator module only routes requests:

- `parse_path`: kmock parses `/api/v1/namespaces[/<name>]` as "namespace <name>, no resource"
  (or crashes on the bare list path); namespaces are the one core resource whose plural collides
  with the namespace prefix. Installed once by `install()`.
- `stamp_new`: kmock stores bodies verbatim; clients need metadata.uid, resourceVersion,
  namespace, creationTimestamp, generation (custom resources) and `generateName` expansion.
- `apply_patch`: kmock turns a failed JSON-patch `test` op into a 500; clients (Kopf's optimistic
  concurrency, our operator's guards) expect 422 and retry. Strategic merge (kubectl on built-in
  types) is treated as a JSON merge patch: good enough for the flat objects tests use.
- `spec_changed`: generation bumps only when anything but metadata/status changes, as for CRDs
  with a status subresource.
- `matches_selectors`: label and field selectors on lists and watches (kmock ignores them).
- `status_body`: a `kind: Status` error without kmock's traceback in `details`.

Security property: none; this is test infrastructure. It never logs request bodies (Secrets).
"""

from __future__ import annotations

import copy
import datetime
import secrets
import string
import uuid
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer
from kmock._internal import dicts, parsing

_original_parse_path = parsing.parse_path


class ApiError(Exception):
    """An error the emulator answers with a Kubernetes `Status` body."""

    def __init__(
        self, code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes or []  # details.causes: [{reason, message, field}]
        self.details: dict[str, str] | None = None  # name/group/kind when not the request's own


def parse_path(path: str) -> parsing.ParsedPath:
    """kmock's path parser, fixed for the core `namespaces` resource."""
    parts = [p for p in path.strip("/").split("/") if p]
    namespace_sub = len(parts) == 5 and parts[4] in ("status", "finalize")
    if parts[:3] == ["api", "v1", "namespaces"] and (len(parts) in (3, 4) or namespace_sub):
        name = parts[3] if len(parts) >= 4 else None
        sub = parts[4] if len(parts) == 5 else None
        return parsing.ParsedPath("", "v1", "namespaces", None, name, sub)
    return _original_parse_path(path)


def install() -> None:
    """Install the path-parsing fix into kmock (idempotent; kmock looks it up at call time)."""
    parsing.parse_path = parse_path


def now_rfc3339() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_new(
    body: Mapping[str, Any], *, namespace: str | None, rv: int, api_version: str, kind: str, generation: bool
) -> dict[str, Any]:
    """A created object's stored form: the body plus the metadata a real API server assigns."""
    obj = copy.deepcopy(dict(body))
    meta = obj.setdefault("metadata", {})
    if not meta.get("name"):
        prefix = meta.get("generateName")
        if not prefix:
            raise ApiError(422, "Invalid", "metadata.name or metadata.generateName is required")
        alphabet = string.ascii_lowercase + string.digits
        meta["name"] = prefix + "".join(secrets.choice(alphabet) for _ in range(5))
    if namespace is not None:
        if meta.get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the URL")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["uid"] = str(uuid.uuid4())
    meta["resourceVersion"] = str(rv)
    meta["creationTimestamp"] = now_rfc3339()
    for transient in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(transient, None)
    if generation:
        meta["generation"] = 1
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj


REJECTED = "the server rejected our request due to an error in our request"
UNEXPECTED = "UnexpectedServerResponse"


def _test_path(ops: list[Any]) -> str:
    tests = [op.get("path", "") for op in ops if isinstance(op, Mapping) and op.get("op") == "test"]
    return str(tests[0]) if tests else ""


def apply_patch(current: Mapping[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Apply a merge or JSON patch; failed `test` ops and bad paths become 422 like the real server."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json-patch+json":
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        try:
            return dict(jsonpatch.apply_patch(copy.deepcopy(dict(current)), patch, in_place=False))
        except jsonpatch.JsonPatchTestFailed as e:
            # kube-apiserver: errors.NewGenericServerResponse(422, ...) around json-patch's error.
            failed = f"testing value {_test_path(patch)} failed: test failed"
            raise ApiError(422, "Invalid", REJECTED, [{"reason": UNEXPECTED, "message": failed}]) from e
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
            raise ApiError(422, "Invalid", REJECTED, [{"reason": UNEXPECTED, "message": str(e)}]) from e
    if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        if not isinstance(patch, Mapping):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        try:
            return dict(dicts.merge_patch_dict(copy.deepcopy(dict(current)), patch))
        except ValueError as e:
            raise ApiError(422, "Invalid", f"the merge patch cannot be applied: {e}") from e
    raise ApiError(415, "UnsupportedMediaType", f"the patch content type {ctype!r} is not supported")


def spec_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether anything outside metadata and status changed (what bumps metadata.generation)."""

    def essence(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    return essence(old) != essence(new)


def _parse_selector(selector: str) -> list[tuple[str, str, str | None]]:
    terms: list[tuple[str, str, str | None]] = []
    for raw in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append(("!=", key.strip(), value.strip()))
        elif "==" in raw or "=" in raw:
            key, value = raw.replace("==", "=").split("=", 1)
            terms.append(("=", key.strip(), value.strip()))
        elif raw.startswith("!"):
            terms.append(("!", raw[1:].strip(), None))
        else:
            terms.append(("exists", raw, None))
    return terms


def _field(obj: Mapping[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return None if value is None else str(value)


def matches_selectors(obj: Mapping[str, Any], label_selector: str | None, field_selector: str | None) -> bool:
    """Equality/existence label selectors and `metadata.*` field selectors, as lists and watches use."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for op, key, value in _parse_selector(label_selector or ""):
        present = key in labels
        if (
            (op == "exists" and not present)
            or (op == "!" and present)
            or (op == "=" and labels.get(key) != value)
            or (op == "!=" and labels.get(key) == value)
        ):
            return False
    for op, key, value in _parse_selector(field_selector or ""):
        actual = _field(obj, key)
        if (op == "=" and actual != value) or (op == "!=" and actual == value):
            return False
    return True


def status_body(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A Kubernetes `Status` failure body."""
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": dict(details or {}),
    }
