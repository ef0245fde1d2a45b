"""Request validation as kube-apiserver does it, answered with the real `Status` shape.

- Custom resources: the CRD's structural OpenAPI schema (type, enum, required, maxLength,
  pattern, minimum, nested properties and items) and its CEL rules (`x-kubernetes-validations`,
  transition rules with `oldSelf` only on update). The emulator has no CEL engine: each rule the
  CRDs use has a Python equivalent in `_RULES` (CEL's `duration()` as Go's `time.ParseDuration`,
  without days), and a CRD with a rule that has none is refused at
  registration (so a new rule in crds/ cannot silently go unchecked).
- Secrets: the 1 MiB limit on the total size of `data` (`corev1.MaxSecretSize`; size limit
  configurable for tests), and the request body limit (3 MiB, `MaxRequestBodyBytes`) -> 413.

A failure is `422 Invalid` with `details.causes[] = {reason, message, field}`, `reason` one of
FieldValueInvalid, FieldValueRequired, FieldValueTooLong, FieldValueNotSupported,
FieldValueTypeInvalid, and the message `<Kind>.<group> "<name>" is invalid: <field>: <message>, ...`
(k8s.io/apimachinery `errors.NewInvalid`). Defaulting is not emulated in what is stored, but
validation sees it: an absent field with a `default` is validated (and compared by transition
rules) as its default, as kube-apiserver validates the defaulted object.

Security property: none (test infrastructure); Secret values never appear in a message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from kube import compat

MAX_SECRET_BYTES = 1024 * 1024  # corev1.MaxSecretSize
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes

Cause = dict[str, str]
Rule = Callable[[Any, Any], bool]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> compat.ApiError:
    """`errors.NewInvalid`: 422 with one cause per field error."""
    qualified = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes)
    error = compat.ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', causes)
    error.details = {"name": name, "group": group, "kind": kind}
    return error


def too_large() -> compat.ApiError:
    """kube-apiserver's answer to a request body over MaxRequestBodyBytes (before any decoding)."""
    return compat.ApiError(413, "RequestEntityTooLarge", f"limit is {MAX_REQUEST_BYTES}")


# -- Secrets ------------------------------------------------------------------------------------


def secret_causes(secret: Mapping[str, Any], limit: int = MAX_SECRET_BYTES) -> list[Cause]:
    """`ValidateSecret`'s size rule: the decoded `data` values may total at most `limit` bytes."""
    total = 0
    for value in (secret.get("data") or {}).values():
        try:
            total += len(base64.b64decode(str(value), validate=True))
        except ValueError:
            return [
                {
                    "reason": "FieldValueInvalid",
                    "field": "data",
                    "message": "Invalid value: illegal base64 data",
                }
            ]
    for value in (secret.get("stringData") or {}).values():
        total += len(str(value).encode())
    if total > limit:
        return [
            {
                "reason": "FieldValueTooLong",
                "field": "data",
                "message": f"Too long: may not be more than {limit} bytes",
            }
        ]
    return []


# -- custom resources ---------------------------------------------------------------------------


def schema_causes(
    schema: Mapping[str, Any], obj: Any, old: Any = None, path: str = "", root: bool = True
) -> list[Cause]:
    """Structural-schema and CEL failures of `obj` (`old`: the stored object on an update)."""
    causes: list[Cause] = []
    field = path or "<nil>"
    wanted = schema.get("type")
    if wanted in _TYPES and not (
        isinstance(obj, _TYPES[wanted]) and not (wanted in ("integer", "number") and isinstance(obj, bool))
    ):
        got = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(obj), "number")
        message = f"Invalid value: {_quote(got)}: {field} in body must be of type {wanted}: {_quote(got)}"
        return [{"reason": "FieldValueTypeInvalid", "field": field, "message": message}]
    if "enum" in schema and obj not in schema["enum"]:
        supported = ", ".join(_quote(v) for v in schema["enum"])
        causes.append(
            {
                "reason": "FieldValueNotSupported",
                "field": field,
                "message": f"Unsupported value: {_quote(obj)}: supported values: {supported}",
            }
        )
    if isinstance(obj, str):
        if "maxLength" in schema and len(obj) > schema["maxLength"]:
            causes.append(
                {
                    "reason": "FieldValueTooLong",
                    "field": field,
                    "message": f"Too long: may not be more than {schema['maxLength']} bytes",
                }
            )
        if "pattern" in schema and not re.search(schema["pattern"], obj):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": field,
                    "message": (
                        f"Invalid value: {_quote(obj)}: {field} in body should match '{schema['pattern']}'"
                    ),
                }
            )
    if (
        isinstance(obj, (int, float))
        and not isinstance(obj, bool)
        and "minimum" in schema
        and obj < schema["minimum"]
    ):
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": field,
                "message": (
                    f"Invalid value: {obj}: {field} in body should be greater than or equal to "
                    f"{schema['minimum']}"
                ),
            }
        )
    if isinstance(obj, dict):
        for required in schema.get("required") or []:
            if required not in obj:
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "field": _join(path, required),
                        "message": "Required value",
                    }
                )
        for prop, sub in (schema.get("properties") or {}).items():
            if root and prop in ("metadata", "apiVersion", "kind"):
                continue
            # kube-apiserver validates defaulted objects (and defaults the stored one on read), so
            # an absent field with a `default` is checked as that default: `self == oldSelf` on
            # such a field refuses setting it on an object created without it.
            if prop in obj or "default" in sub:
                value = obj[prop] if prop in obj else sub["default"]
                previous = old.get(prop, sub.get("default")) if isinstance(old, dict) else None
                causes += schema_causes(sub, value, previous, _join(path, prop), root=False)
    if isinstance(obj, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(obj):
            causes += schema_causes(schema["items"], item, None, f"{field}[{i}]", root=False)
    if not causes:
        causes += _cel_causes(schema, obj, old, path)
    return causes


def _cel_causes(schema: Mapping[str, Any], obj: Any, old: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        text = normalise(rule["rule"])
        if "oldSelf" in text and old is None:
            continue  # transition rules apply to updates of an existing value only
        if not rule_for(text)(obj, old):
            field = path + rule["fieldPath"] if rule.get("fieldPath") else (path or "<nil>")
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            causes.append(
                {
                    "reason": rule.get("reason", "FieldValueInvalid"),
                    "field": field.lstrip("."),
                    "message": f'Invalid value: "object": {message}',
                }
            )
    return causes


def _join(path: str, prop: str) -> str:
    return f"{path}.{prop}" if path else prop


def crd_rules(schema: Mapping[str, Any]) -> list[str]:
    """Every CEL rule in a schema (to check at registration that each one can be evaluated)."""
    found = [normalise(r["rule"]) for r in schema.get("x-kubernetes-validations") or []]
    for sub in (schema.get("properties") or {}).values():
        found += crd_rules(sub)
    if isinstance(schema.get("items"), Mapping):
        found += crd_rules(schema["items"])
    return found


def normalise(rule: str) -> str:
    return " ".join(rule.split())


# -- CEL: the rules the CRDs use, in Python ----------------------------------------------------

_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_PAIR = re.compile(r"\(self\.keyUsage == '([^']+)' && self\.algorithm in \[([^\]]*)\]\)")


def _usage_rule(text: str) -> Rule | None:
    """`(self.keyUsage == 'u' && self.algorithm in ['a', ...]) || ...`, read from the rule itself."""
    pairs = _PAIR.findall(text)
    if (
        not pairs
        or normalise(" || ".join(f"(self.keyUsage == '{u}' && self.algorithm in [{a}])" for u, a in pairs))
        != text
    ):
        return None
    allowed = {u: {a.strip().strip("'") for a in algs.split(",")} for u, algs in pairs}
    return lambda s, _old: s.get("algorithm") in allowed.get(s.get("keyUsage"), set())


_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds in a Go `time.ParseDuration` string (what CEL's `duration()` accepts: units ns, us,
    µs, ms, s, m, h, optional sign and fractions; no days). ValueError otherwise (a CEL error,
    which fails the rule unless `||` absorbs it)."""
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.lstrip("+"))
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(body):
        if match.start() != pos or match.group(1) in ("", "."):
            raise ValueError(text)
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(text)
    return sign * total


def _at_least_an_hour(s: Any, _old: Any) -> bool:
    if re.search(r"^[1-9][0-9]*d$", s):
        return True  # `||` absorbs the error duration() raises on days
    try:
        return go_duration(s) >= 3600
    except ValueError:
        return False


_FLAG_RULE = re.compile(
    r"^!has\(self\.(\w+)\) \|\| !self\.\1 \|\| self\.algorithm in \[([^\]]*)\]$"
)


def _flag_algorithm_rule(text: str) -> Rule | None:
    """`!has(self.f) || !self.f || self.algorithm in ['a', ...]`: a true boolean field `f` only
    for the listed algorithms (derived, convergentEncryption), read from the rule itself."""
    match = _FLAG_RULE.match(text)
    if match is None:
        return None
    flag, listed = match.group(1), {a.strip().strip("'") for a in match.group(2).split(",")}
    return lambda s, _old: not s.get(flag, False) or s.get("algorithm") in listed


def _min(s: Any, field: str, default: int) -> int:
    value = s.get(field, default)
    return int(value)


_RULES: dict[str, Rule] = {
    "self.matches('^[1-9][0-9]*d$') || duration(self) >= duration('1h')": _at_least_an_hour,
    "!has(self.minEncryptionVersion) || self.minEncryptionVersion == 0 || self.minEncryptionVersion >= "
    "(has(self.minDecryptionVersion) ? self.minDecryptionVersion : 1)": (
        lambda s, _old: _min(s, "minEncryptionVersion", 0) in (0,)
        or _min(s, "minEncryptionVersion", 0) >= _min(s, "minDecryptionVersion", 1)
    ),
    "!has(self.minAvailableVersion) || self.minAvailableVersion <= "
    "(has(self.minDecryptionVersion) ? self.minDecryptionVersion : 1)": (
        lambda s, _old: _min(s, "minAvailableVersion", 0) <= _min(s, "minDecryptionVersion", 1)
    ),
    "!has(oldSelf.minAvailableVersion) || (has(self.minAvailableVersion) && "
    "self.minAvailableVersion >= oldSelf.minAvailableVersion)": (
        lambda s, old: "minAvailableVersion" not in old
        or ("minAvailableVersion" in s and s["minAvailableVersion"] >= old["minAvailableVersion"])
    ),
    "self == oldSelf": lambda s, old: bool(s == old),
    "!has(self.convergentEncryption) || !self.convergentEncryption || (has(self.derived) && self.derived)": (
        lambda s, _old: not s.get("convergentEncryption", False) or bool(s.get("derived", False))
    ),
    "self.metadata.name.size() <= 32 && self.metadata.name.matches('^[a-z0-9]+(-[a-z0-9]+)*$')": (
        lambda s, _old: len(s["metadata"]["name"]) <= 32 and _SLUG.search(s["metadata"]["name"]) is not None
    ),
    "!has(oldSelf.keyId) || (has(self.keyId) && self.keyId == oldSelf.keyId)": (
        lambda s, old: "keyId" not in old or s.get("keyId") == old["keyId"]
    ),
}


def rule_for(text: str) -> Rule:
    rule = _RULES.get(text) or _usage_rule(text) or _flag_algorithm_rule(text)
    if rule is None:
        raise LookupError(f"the emulator cannot evaluate the CEL rule {text!r}: add it to kube.validation")
    return rule
