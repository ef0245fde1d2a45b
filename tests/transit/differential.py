"""The differential harness: send one scripted request to OpenBao and to KubeKMS, compare.

A `Step` is data: method, path, body, headers, which token, what to remember from the reply and
how to compare. Every reply is compared on its status, its `errors` (exactly, unless the step
says otherwise), its envelope, and every field of `data`: the same keys, the same JSON types,
and the same values — except fields that are random by nature (ciphertexts, signatures, HMACs,
random bytes, ids, times), which must each match the field's format on both sides and are then
checked by round trip: later steps send each server its own remembered value back
(`$name` in a body or path) and compare what comes back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import requests

# Matchers: a regex (both values are strings matching it), SHAPE (same structure and JSON
# types, any values), or a predicate on each value.
SHAPE: Final = "<shape>"
Matcher = str | Callable[[Any], bool]

B64: Final = r"[A-Za-z0-9+/]*={0,2}"
FRAMED: Final = rf"vault:v[1-9][0-9]*:{B64}"
UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RFC3339: Final = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"

# Fields random by nature wherever they appear.
RANDOM: Final[dict[str, Matcher]] = {
    "request_id": UUID,
    "ciphertext": FRAMED,
    "signature": FRAMED,
    "hmac": FRAMED,
    "random_bytes": rf"{B64}|[0-9a-f]+",
    "creation_time": RFC3339,
    "public_key": SHAPE,
    "server_time_utc": SHAPE,
    "cluster_name": SHAPE,
    "cluster_id": SHAPE,
}


@dataclass(frozen=True)
class Step:
    method: str
    path: str  # under /v1/; may hold `$name` placeholders
    body: Any = None  # JSON (dict/list) or raw bytes; may hold `$name` placeholders
    token: str | None = "root"  # "root": the server's own root token; None: no token; else literal
    headers: dict[str, str] = field(default_factory=dict)
    save: dict[str, str] = field(default_factory=dict)  # name -> dotted path in the reply
    loose: dict[str, Matcher] = field(default_factory=dict)  # field name -> matcher (this step)
    select: str | None = None  # compare only this dotted subtree of the reply
    errors: bool = True  # compare `errors` texts exactly (False: only that there are errors)
    note: str = ""

    def describe(self) -> str:
        return f"{self.method} /v1/{self.path}" + (f" ({self.note})" if self.note else "")


def dig(value: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else ():
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _substitute(value: Any, saved: dict[str, Any]) -> Any:
    if isinstance(value, str):
        for name in sorted(saved, key=len, reverse=True):
            value = value.replace("$" + name, str(saved[name]))
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, saved) for v in value]
    return value


@dataclass
class Reply:
    status: int
    body: Any


class Session:
    """One server's side of a run: its address, token and remembered values."""

    def __init__(self, url: str, root_token: str) -> None:
        self.url = url.rstrip("/")
        self.root_token = root_token
        self.saved: dict[str, Any] = {}
        self.http = requests.Session()

    def send(self, step: Step) -> Reply:
        headers = dict(step.headers)
        if step.token == "root":
            headers["X-Vault-Token"] = self.root_token
        elif step.token is not None:
            headers["X-Vault-Token"] = step.token
        headers = {k: _substitute(v, {"root": self.root_token}) for k, v in headers.items()}
        kwargs: dict[str, Any] = {}
        if isinstance(step.body, bytes):
            kwargs["data"] = step.body
        elif step.body is not None:
            kwargs["json"] = _substitute(step.body, self.saved)
        path = _substitute(step.path, self.saved)
        response = self.http.request(
            step.method, f"{self.url}/v1/{path}", headers=headers, timeout=60, **kwargs
        )
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        reply = Reply(response.status_code, body)
        if 200 <= reply.status < 300 or (isinstance(body, dict) and "data" in body):
            for name, dotted in step.save.items():
                self.saved[name] = dig(body, dotted)
        return reply


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shape_diff(a: Any, b: Any, path: str) -> list[str]:
    if _json_type(a) != _json_type(b):
        return [f"{path}: type {_json_type(a)} vs {_json_type(b)}"]
    if isinstance(a, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in _shape_diff(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items vs {len(b)}"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _shape_diff(x, y, f"{path}.{i}")
        ]
    return []


def _match(matcher: Matcher, a: Any, b: Any, path: str) -> list[str]:
    if matcher == SHAPE:
        return _shape_diff(a, b, path)
    if callable(matcher):
        return [] if matcher(a) and matcher(b) else [f"{path}: {a!r} / {b!r} do not satisfy the check"]
    bad = [v for v in (a, b) if not (isinstance(v, str) and re.fullmatch(matcher, v))]
    return [f"{path}: {v!r} does not match {matcher}" for v in bad]


def diff(reference: Any, ours: Any, loose: dict[str, Matcher], path: str = "") -> list[str]:
    """Differences between OpenBao's reply and KubeKMS's (empty when they agree)."""
    if _json_type(reference) != _json_type(ours):
        return [f"{path or '.'}: {reference!r} vs {ours!r}"]
    if isinstance(reference, dict):
        if set(reference) != set(ours):
            missing = sorted(set(reference) - set(ours))
            extra = sorted(set(ours) - set(reference))
            return [f"{path or '.'}: keys missing {missing}, extra {extra}"]
        found: list[str] = []
        for key in reference:
            where = f"{path}.{key}" if path else key
            matcher = loose.get(key)
            if matcher is not None:
                found += _match(matcher, reference[key], ours[key], where)
            else:
                found += diff(reference[key], ours[key], loose, where)
        return found
    if isinstance(reference, list):
        if len(reference) != len(ours):
            return [f"{path}: {len(reference)} items vs {len(ours)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(reference, ours, strict=True))
            for d in diff(a, b, loose, f"{path}.{i}")
        ]
    return [] if reference == ours else [f"{path}: {reference!r} vs {ours!r}"]


def compare(step: Step, reference: Reply, ours: Reply) -> list[str]:
    """Every difference between the two replies to `step`, as readable lines."""
    found: list[str] = []
    if reference.status != ours.status:
        found.append(f"status {reference.status} vs {ours.status}")
    a, b = reference.body, ours.body
    if step.select is not None:
        try:
            a, b = dig(a, step.select), dig(b, step.select)
        except (KeyError, IndexError, TypeError) as exc:
            return [*found, f"{step.select}: missing ({exc!r})"]
    loose = {**RANDOM, **step.loose}
    if not step.errors and isinstance(a, dict) and isinstance(b, dict) and "errors" in a:
        if not (isinstance(b.get("errors"), list) and b["errors"]):
            found.append(f"errors: {a['errors']!r} vs {b!r}")
        return found
    return found + diff(a, b, loose)


def run(steps: list[Step], reference: Session, ours: Session) -> list[str]:
    """Run the script against both; a list of failures, each naming its step."""
    failures = []
    for number, step in enumerate(steps, 1):
        want, got = reference.send(step), ours.send(step)
        for line in compare(step, want, got):
            failures.append(
                f"#{number} {step.describe()}: {line}\n"
                f"    openbao: {str(want.body)[:400]}\n    kubekms: {str(got.body)[:400]}"
            )
    return failures
