"""A small declarative schema layer: each field both validates input and describes itself in OpenAPI.

Scalar fields live here; base64 payloads in `kms_api.schema.base64_fields`, arrays and objects in
`kms_api.schema.composite_fields`.

Request validation and /openapi.json come from the same `Field` objects, so the documented
contract cannot drift from the enforced one. Issues use Infisical's zod shapes and texts (spec §1,
§3.1): zod v4's, which Infisical's current validator compiler (`z.safeDecode`) requires, with each
issue's own fields (`expected`, `values`, `origin`, `minimum`/`maximum`, `format`, `pattern`).
Security property: issue messages name fields and limits, never echo submitted payloads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from kms_core.errors import Issue

Path = tuple[str | int, ...]
INVALID: Final = object()  # sentinel: the field produced issues, the value is unusable
MISSING: Final = object()  # sentinel: the key is absent (JavaScript's `undefined`)

_JSON_TYPE = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}


def type_name(value: Any) -> str:
    """zod v4's name for a received value's type (`Invalid input: expected string, received number`)."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    return _JSON_TYPE.get(type(value), "unknown")


def invalid_type(expected: str, value: Any, path: Path) -> Issue:
    """zod v4's `invalid_type` issue; a missing key is `received undefined` (v3 said `Required`)."""
    message = f"Invalid input: expected {expected}, received {type_name(value)}"
    return Issue("invalid_type", message, path, {"expected": expected})


def too_small(origin: str, minimum: int, path: Path, message: str | None = None) -> Issue:
    """zod v4's `too_small` for a length (string, array) or a number bound (inclusive)."""
    return _bound("too_small", "Too small", ">=", "minimum", origin, minimum, path, message)


def too_big(origin: str, maximum: int, path: Path, message: str | None = None) -> Issue:
    """zod v4's `too_big`, the counterpart of `too_small`."""
    return _bound("too_big", "Too big", "<=", "maximum", origin, maximum, path, message)


def _bound(
    code: str, words: str, op: str, key: str, origin: str, limit: int, path: Path, message: str | None
) -> Issue:
    unit = _UNITS.get(origin)
    if message is None:
        has = f"to have {op}{limit} {unit}" if unit else f"to be {op}{limit}"
        message = f"{words}: expected {origin} {has}"
    return Issue(code, message, path, {"origin": origin, key: limit, "inclusive": True})


_UNITS: Final = {"string": "characters", "array": "items"}


@dataclass(frozen=True)
class Field:
    """One named input. `parse` returns the parsed value or INVALID after appending issues."""

    name: str
    required: bool = True
    default: Any = None
    description: str = ""

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        raise NotImplementedError

    def openapi(self) -> dict[str, Any]:
        raise NotImplementedError

    def doc(self) -> dict[str, Any]:
        schema = self.openapi()
        if self.description:
            schema["description"] = self.description
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class String(Field):
    min_length: int = 0
    max_length: int | None = None
    trim: bool = False
    min_message: str | None = None

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if not isinstance(value, str):
            issues.append(invalid_type("string", value, path))
            return INVALID
        if self.trim:
            value = value.strip()
        before = len(issues)
        if len(value) < self.min_length:
            issues.append(too_small("string", self.min_length, path, self.min_message))
        if self.max_length is not None and len(value) > self.max_length:
            issues.append(too_big("string", self.max_length, path))
        return value if len(issues) == before else INVALID

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Slug(Field):
    """Infisical's slugSchema: trim, length, then "equals its own slugification" (spec §1.2)."""

    max_length: int = 32
    label: str = "Name"

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if not isinstance(value, str):
            issues.append(invalid_type("string", value, path))
            return INVALID
        value = value.strip()
        before = len(issues)
        if not value:
            msg = f"{self.label} field must be at least 1 lowercase character"
            issues.append(too_small("string", 1, path, msg))
        if len(value) > self.max_length:
            msg = f"{self.label} field must be at most {self.max_length} lowercase characters"
            issues.append(too_big("string", self.max_length, path, msg))
        if value and not _SLUG.fullmatch(value):
            msg = f"{self.label} field can only contain lowercase letters, numbers, and hyphens"
            issues.append(Issue("custom", msg, path))
        return value if len(issues) == before else INVALID

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": _SLUG.pattern}


# RFC 1123 label, as Kubernetes validates namespace names (k8s.io/apimachinery IsDNS1123Label).
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
DNS_LABEL_MAX = 63


@dataclass(frozen=True)
class DnsLabel(Field):
    """A Kubernetes namespace name: 1-63 of [a-z0-9-], starting and ending alphanumeric.

    Security property: a value that passes cannot change the shape of an API-server URL it is
    put into (no `/`, `.`, `%`, `?`, whitespace or upper case), so it names one namespace only.
    """

    label: str = "projectId"

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if not isinstance(value, str):
            issues.append(invalid_type("string", value, path))
            return INVALID
        if len(value) <= DNS_LABEL_MAX and _DNS_LABEL.fullmatch(value):
            return value
        msg = (
            f"{self.label} must be a Kubernetes namespace name: at most {DNS_LABEL_MAX} lowercase "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
        issues.append(Issue("invalid_string", msg, path))
        return INVALID

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": DNS_LABEL_MAX, "pattern": _DNS_LABEL.pattern}


@dataclass(frozen=True)
class Enum(Field):
    values: tuple[str, ...] = ()

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if isinstance(value, str) and value in self.values:
            return value
        # zod v4: one `invalid_value` issue whatever was received (a missing key included),
        # listing the options; the received value is never echoed.
        if len(self.values) == 1:
            msg = f'Invalid input: expected "{self.values[0]}"'
        else:
            msg = "Invalid option: expected one of " + "|".join(f'"{v}"' for v in self.values)
        issues.append(Issue("invalid_value", msg, path, {"values": list(self.values)}))
        return INVALID

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class Boolean(Field):
    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if isinstance(value, bool):
            return value
        issues.append(invalid_type("boolean", value, path))
        return INVALID

    def openapi(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class QueryInt(Field):
    """A query-string number coerced like `z.coerce.number()`, with bounds."""

    minimum: int | None = None
    maximum: int | None = None

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        try:
            number = float(value.strip() or 0) if isinstance(value, str) else math.nan
        except ValueError:
            number = math.nan
        if math.isnan(number) or math.isinf(number):
            # z.coerce.number(): Number("abc") is NaN, which zod reports as received NaN.
            received = "NaN" if math.isnan(number) else "Infinity"
            message = f"Invalid input: expected number, received {received}"
            issues.append(Issue("invalid_type", message, path, {"expected": "number", "received": received}))
            return INVALID
        if not number.is_integer():
            # Stricter than z.coerce.number() (a page size of 1.5 has no meaning): z.int()'s issue.
            message = "Invalid input: expected int, received number"
            issues.append(Issue("invalid_type", message, path, {"expected": "int", "format": "safeint"}))
            return INVALID
        before = len(issues)
        if self.minimum is not None and number < self.minimum:
            issues.append(too_small("number", self.minimum, path))
        if self.maximum is not None and number > self.maximum:
            issues.append(too_big("number", self.maximum, path))
        return int(number) if len(issues) == before else INVALID

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff",
    re.IGNORECASE,
)


# zod v4's uuid regex as its issues report it (`pattern`: the JavaScript RegExp's toString()).
UUID_PATTERN: Final = (
    "/^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
    "|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/"
)


def is_uuid(text: str) -> bool:
    """zod v4's strict RFC 9562 check: version 1-8, variant 10xx, plus the nil and max UUIDs."""
    return bool(_UUID.fullmatch(text))


@dataclass(frozen=True)
class Uuid(Field):
    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if not isinstance(value, str):
            issues.append(invalid_type("string", value, path))
            return INVALID
        if not is_uuid(value):
            details = {"origin": "string", "format": "uuid", "pattern": UUID_PATTERN}
            issues.append(Issue("invalid_format", "Invalid UUID", path, details))
            return INVALID
        # The strict pattern admits only the canonical 8-4-4-4-12 hex form, whose canonical
        # spelling (what uuid.UUID would print) is its lower case.
        return value.lower()

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}
