"""JSON number fields: whole numbers (`z.number().int()`) and durations (a Go/Vault duration
string or a number of seconds), for the lifecycle extensions of the update route.

Security property: every value that passes fits the store and date arithmetic (safe integers,
durations bounded by `kms_core.lifecycle.MAX_DURATION`); issue messages name the field's rule,
never the submitted value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from kms_api.schema.fields import INVALID, Field, Path, invalid_type, too_big, too_small
from kms_core.errors import BadRequest, Issue
from kms_core.lifecycle import MAX_DURATION, parse_duration

# JavaScript's Number.MAX_SAFE_INTEGER: zod v4's `int()` refuses anything beyond it.
MAX_SAFE_INTEGER: Final = 2**53 - 1
_DURATION_TEXT_MAX: Final = 64


def _whole(value: Any, path: Path, issues: list[Issue]) -> int | None:
    """`value` as an int when it is a JSON number with no fraction (3.0 is 3, as in JavaScript)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        issues.append(invalid_type("number", value, path))
        return None
    if isinstance(value, float) and not value.is_integer():  # also NaN and infinity
        message = "Invalid input: expected int, received number"
        issues.append(Issue("invalid_type", message, path, {"expected": "int", "format": "safeint"}))
        return None
    return int(value)


@dataclass(frozen=True)
class Integer(Field):
    """A JSON whole number within [minimum, maximum] (zod v4's `z.number().int().min().max()`)."""

    minimum: int = 0
    maximum: int = MAX_SAFE_INTEGER

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        number = _whole(value, path, issues)
        if number is None:
            return INVALID
        if number < self.minimum:
            issues.append(too_small("number", self.minimum, path))
            return INVALID
        if number > self.maximum:
            issues.append(too_big("number", self.maximum, path))
            return INVALID
        return number

    def openapi(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Duration(Field):
    """Seconds, written `24h`, `90d`, `1h30m`, `"3600"` or 3600; null is 0 (the feature off).

    Only the syntax is checked here (422); what a value means for a key (e.g. a rotation period
    of at least an hour) is the service's rule and its 400."""

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if value is None:
            return 0
        if isinstance(value, str):
            if len(value) > _DURATION_TEXT_MAX:
                issues.append(too_big("string", _DURATION_TEXT_MAX, path))
                return INVALID
            try:
                return parse_duration(value)
            except BadRequest:
                message = "Invalid duration: expected seconds or a duration such as 24h, 90d or 1h30m"
                issues.append(Issue("invalid_format", message, path, {"format": "duration"}))
                return INVALID
        number = _whole(value, path, issues)
        if number is None:
            return INVALID
        if number < 0:
            issues.append(too_small("number", 0, path))
            return INVALID
        if number > MAX_DURATION:
            issues.append(too_big("number", MAX_DURATION, path))
            return INVALID
        return number

    def openapi(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "string", "maxLength": _DURATION_TEXT_MAX, "example": "24h"},
                {"type": "integer", "minimum": 0, "maximum": MAX_DURATION},
            ],
            "nullable": True,
        }
