"""Reading a Transit request as Vault does: a JSON object body (any content type, empty = `{}`),
fields coerced like Vault's field data, base64 decoded with Go's error texts, the namespace
header as the project, and the caller's token from `X-Vault-Token` or `Authorization: Bearer`.

Security property: bodies are bounded by the route's limit and read under the read timeout
before parsing; error texts name fields and byte offsets, never the values sent.
"""

from __future__ import annotations

import binascii
import functools
from typing import Any, Final

import orjson
import pybase64
from aiohttp import web

from kms_api.http.json_body import read_bytes
from kms_api.schema import projects
from kms_api.transit.envelope import VaultError
from kms_core.errors import TokenError, Unauthorized, ValidationFailure

__all__ = [
    "DEFAULT_PROJECT",
    "Base64Error",
    "b64decode",
    "flag",
    "integer",
    "project_of",
    "read_body",
    "text",
    "vault_token",
]

DEFAULT_PROJECT: Final = "default"
NAMESPACE_HEADER: Final = "X-Vault-Namespace"
_STD_ALPHABET: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def vault_token(request: web.Request) -> str:
    """`X-Vault-Token`, else `Authorization: Bearer` (what Vault clients send); the same tokens
    as the Infisical routes (`kms_api.pipeline.route.TokenReader`)."""
    token = request.headers.get("X-Vault-Token", "").strip()
    if token:
        return token
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("Token missing")
    scheme, _, bearer = header.partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        raise TokenError("malformed token")
    return bearer.strip()


def project_of(request: web.Request) -> str:
    """The project a request acts in: its Vault namespace (`X-Vault-Namespace: team-a`), or
    `default` without one. Checked by the mode's project rule (a namespace in Kubernetes mode)."""
    namespace = request.headers.get(NAMESPACE_HEADER, "").strip().strip("/")
    project = namespace or DEFAULT_PROJECT
    if not _is_project(projects.is_kubernetes(request.app), project):
        raise VaultError(404, "namespace not found")
    return project


@functools.lru_cache(maxsize=1024)
def _is_project(kubernetes: bool, project: str) -> bool:
    """The mode's project rule, remembered: a pure function of its arguments, asked on every
    request with the same few namespaces (bounded, so a caller sending many cannot grow it)."""
    if not kubernetes:
        return True
    try:
        projects.check_namespace(project)
    except ValidationFailure:
        return False
    return True


async def read_body(request: web.Request, limit: int) -> dict[str, Any]:
    """The request's JSON object (`{}` for an empty body), as Vault parses it: any content type."""
    raw = await read_bytes(request, limit)
    if not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise VaultError(400, "failed to decode JSON input: invalid JSON") from None
    if parsed is None:  # Go decodes `null` into an empty map (what `bao write -f` sends)
        return {}
    if not isinstance(parsed, dict):
        raise VaultError(
            400,
            "failed to decode JSON input: json: cannot unmarshal "
            f"{_json_kind(parsed)} into Go value of type map[string]interface {{}}",
        )
    return parsed


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return "number"


def text(value: Any, field: str) -> str:
    """A string field as Vault's weakly typed field data reads it (numbers and booleans become
    their text; null is empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return orjson.dumps(value).decode()
    raise VaultError(400, f"error converting input for field {field!r}: expected a string")


class Base64Error(ValueError):
    """Go's `base64.CorruptInputError` text: `illegal base64 data at input byte N`."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def b64decode(value: str) -> bytes:
    """Standard padded base64, as Go's `base64.StdEncoding.DecodeString` accepts it (CR and LF
    ignored), raising `Base64Error` with the offset Go reports."""
    try:
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    raw = value.encode("utf-8", "surrogatepass")
    try:
        offset = _go_error_offset(raw)
    except _Valid:  # only newlines stood in the way: Go skips them
        return pybase64.b64decode(raw.replace(b"\n", b"").replace(b"\r", b""), validate=True)
    raise Base64Error(offset)


def _go_error_offset(src: bytes) -> int:
    """Where Go's decoder stops on `src` (a port of encoding/base64's decodeQuantum); a valid
    input with newlines (which the fast path refuses) is decoded by the caller's fallback."""
    si, n = 0, len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    raise _Valid()
                return si - j
            c = src[si]
            si += 1
            if c in _STD_ALPHABET:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != 0x3D:  # '='
                return si - 1
            if j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    return n
                if src[si] != 0x3D:
                    return si - 1
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                return si
            raise _Valid()


class _Valid(Exception):
    """Go would accept the input (it only had newlines, which Go skips)."""


_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"", "0", "f", "F", "FALSE", "false", "False"})


def flag(value: Any, field: str) -> bool:
    """A boolean field as Vault reads it (Go's strconv.ParseBool for strings, non-zero numbers)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise VaultError(400, f"error converting input for field {field!r}: expected a boolean")


def integer(value: Any, field: str, *, prefix: str = "") -> int:
    """An integer field as Vault's weakly typed field data reads it (a JSON integer, a boolean,
    or a string of decimal digits), else OpenBao's conversion text (`prefix` is what the
    route puts before it, e.g. `Field validation failed: `)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        digits = value.strip()
        body = digits[1:] if digits[:1] in ("+", "-") else digits
        if body.isascii() and body.isdigit():
            return int(digits)
    raise VaultError(
        400,
        f"{prefix}error converting input for field \"{field}\": '' cannot parse value as 'int': "
        "strconv.ParseInt: invalid syntax",
    )
