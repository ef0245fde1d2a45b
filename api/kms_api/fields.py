"""A small declarative schema layer: each field both validates input and describes itself in OpenAPI.

Scalar fields live here; base64 payloads in `kms_api.payloads`, arrays and objects in
`kms_api.objects`.

Request validation and /openapi.json come from the same `Field` objects, so the documented
contract cannot drift from the enforced one. Issues use Infisical's zod shapes and texts (spec §1,
§3.1). Security property: issue messages name fields and limits, never echo submitted payloads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from kms_core.errors import Issue

Path = tuple[str | int, ...]
INVALID: Final = object()  # sentinel: the field produced issues, the value is unusable

_JSON_TYPE = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}


def type_name(value: Any) -> str:
    """zod's name for a received value's type (`Expected string, received number`)."""
    if value is None:
        return "null"
    return _JSON_TYPE.get(type(value), "unknown")


def invalid_type(expected: str, value: Any, path: Path) -> Issue:
    if value is MISSING:
        return Issue("invalid_type", "Required", path)
    return Issue("invalid_type", f"Expected {expected}, received {type_name(value)}", path)


MISSING: Final = object()


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
            msg = self.min_message or f"String must contain at least {self.min_length} character(s)"
            issues.append(Issue("too_small", msg, path))
        if self.max_length is not None and len(value) > self.max_length:
            msg = f"String must contain at most {self.max_length} character(s)"
            issues.append(Issue("too_big", msg, path))
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
            issues.append(
                Issue("too_small", f"{self.label} field must be at least 1 lowercase character", path)
            )
        if len(value) > self.max_length:
            msg = f"{self.label} field must be at most {self.max_length} lowercase characters"
            issues.append(Issue("too_big", msg, path))
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
        if value in self.values and isinstance(value, str):
            return value
        expected = " | ".join(f"'{v}'" for v in self.values)
        if isinstance(value, str):
            msg = f"Invalid enum value. Expected {expected}, received '{value}'"
        else:
            msg = f"Expected {expected}, received {type_name(value)}"
        issues.append(Issue("invalid_enum_value", msg, path))
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
        if math.isnan(number):
            issues.append(Issue("invalid_type", "Expected number, received nan", path))
            return INVALID
        if not number.is_integer():
            issues.append(Issue("invalid_type", "Expected integer, received float", path))
            return INVALID
        before = len(issues)
        if self.minimum is not None and number < self.minimum:
            issues.append(Issue("too_small", f"Number must be greater than or equal to {self.minimum}", path))
        if self.maximum is not None and number > self.maximum:
            issues.append(Issue("too_big", f"Number must be less than or equal to {self.maximum}", path))
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
            issues.append(Issue("invalid_string", "Invalid uuid", path))
            return INVALID
        # The strict pattern admits only the canonical 8-4-4-4-12 hex form, whose canonical
        # spelling (what uuid.UUID would print) is its lower case.
        return value.lower()

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}
