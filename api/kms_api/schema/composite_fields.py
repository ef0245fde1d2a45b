"""Composite fields: arrays and objects (`Schema`), with zod's strip-unknown and superRefine semantics.

Security property: unknown keys are dropped, so nothing unvalidated reaches a view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kms_api.schema.fields import INVALID, MISSING, Field, Path, invalid_type, too_big, too_small
from kms_core.errors import Issue


@dataclass(frozen=True)
class Array(Field):
    item: Field | Schema | None = None
    min_items: int = 0
    max_items: int | None = None

    def parse(self, value: Any, path: Path, issues: list[Issue]) -> Any:
        if not isinstance(value, list):
            issues.append(invalid_type("array", value, path))
            return INVALID
        before = len(issues)
        if len(value) < self.min_items:
            issues.append(too_small("array", self.min_items, path))
        if self.max_items is not None and len(value) > self.max_items:
            issues.append(too_big("array", self.max_items, path))
        assert self.item is not None
        out = [self.item.parse(v, (*path, i), issues) for i, v in enumerate(value)]
        return out if len(issues) == before else INVALID

    def openapi(self) -> dict[str, Any]:
        assert self.item is not None
        schema: dict[str, Any] = {"type": "array", "items": self.item.doc(), "minItems": self.min_items}
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        return schema


Refinement = Callable[[dict[str, Any], Path, list[Issue]], None]


@dataclass(frozen=True)
class Schema:
    """An object of fields. Unknown keys are stripped (zod's default); `refine` runs cross-field
    checks only when every field parsed (zod's superRefine semantics)."""

    fields: Sequence[Field]
    refine: Refinement | None = None
    name: str = ""
    extra_doc: dict[str, Any] = field(default_factory=dict)

    def parse(self, data: Any, path: Path = (), issues: list[Issue] | None = None) -> Any:
        own = issues if issues is not None else []
        if not isinstance(data, dict):
            own.append(invalid_type("object", data, path))
            return INVALID
        before = len(own)
        out: dict[str, Any] = {}
        for f in self.fields:
            raw = data.get(f.name, MISSING)
            if raw is MISSING and not f.required:
                out[f.name] = f.default
                continue
            # A missing required key is parsed as `undefined`, so each field reports it as zod v4
            # does for its type (`expected string, received undefined`, an enum's options).
            out[f.name] = f.parse(raw, (*path, f.name), own)
        if len(own) == before and self.refine is not None:
            self.refine(out, path, own)
        return out if len(own) == before else INVALID

    def doc(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {f.name: f.doc() for f in self.fields},
            **self.extra_doc,
        }
        required = [f.name for f in self.fields if f.required]
        if required:
            schema["required"] = required
        return schema
