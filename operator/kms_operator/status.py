"""KmsKey status: the Ready/Degraded conditions and the fields the API reads.

Status is written explicitly by the reconciler (never through handler return values), and only
when something changed, so a healthy key causes no writes and no watch events.

Security property: status carries ids, versions and the public key only; messages name Secrets
and ids, never material.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Health:
    """The outcome of one reconciliation: Ready, or Degraded with a reason and message. A Ready
    key may be Degraded too (`warning`: reason, message) when part of its spec was not applied
    (e.g. a refused version bound) while the key itself serves as before."""

    ready: bool
    reason: str
    message: str
    warning: tuple[str, str] | None = None

    @classmethod
    def ok(cls, disabled: bool, warning: tuple[str, str] | None = None) -> Health:
        if disabled:
            return cls(True, "Disabled", "Key material is available; the key is disabled", warning)
        return cls(True, "Ready", "Key material is available", warning)

    @property
    def degraded_by(self) -> tuple[str, str] | None:
        """(reason, message) of the Degraded condition, or None when it is False."""
        if not self.ready:
            return self.reason, self.message
        return self.warning

    @classmethod
    def degraded(cls, reason: str, message: str) -> Health:
        return cls(False, reason, message)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    old: Mapping[str, Any] | None, kind: str, true: bool, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    status = "True" if true else "False"
    same = old is not None and old.get("status") == status
    cond = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        # The transition time moves only when the status flips (Kubernetes convention).
        "lastTransitionTime": old.get("lastTransitionTime", _now()) if same and old else _now(),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def conditions(current: Mapping[str, Any], health: Health, generation: int | None) -> list[dict[str, Any]]:
    old = {c.get("type"): c for c in current.get("conditions") or [] if isinstance(c, Mapping)}
    degraded = health.degraded_by
    degraded_reason, degraded_message = degraded if degraded else ("AsExpected", "")
    return [
        _condition(old.get("Ready"), "Ready", health.ready, health.reason, health.message, generation),
        _condition(
            old.get("Degraded"), "Degraded", degraded is not None, degraded_reason, degraded_message,
            generation,
        ),
    ]


def was_degraded_for(current: Mapping[str, Any], reason: str) -> bool:
    """Whether the status already reports this Degraded reason (to emit each warning once)."""
    for cond in current.get("conditions") or []:
        if cond.get("type") == "Degraded" and cond.get("status") == "True" and cond.get("reason") == reason:
            return True
    return False


def desired(
    current: Mapping[str, Any], health: Health, generation: int | None, **fields: Any
) -> dict[str, Any]:
    """The new status: `current` updated with `fields` (None removes a field) and the conditions."""
    new = {k: v for k, v in current.items() if k != "conditions"}
    for key, value in fields.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    new["conditions"] = conditions(current, health, generation)
    if generation is not None:
        new["observedGeneration"] = generation
    return new


def changed(current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return dict(current) != dict(new)


def merge_patch(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning `current` into `new`: a field (at any depth of
    nested objects, e.g. `policy.rotationPeriod`) that `new` lacks is set to null, since a merge
    patch only removes what it names; lists are replaced whole."""
    patch: dict[str, Any] = {k: None for k in current if k not in new}
    for key, value in new.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = merge_patch(old, value)
        else:
            patch[key] = value
    return patch
