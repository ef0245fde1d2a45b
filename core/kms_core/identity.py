"""Who is calling: the identity an auth backend established, handed to the service as a value.

Security property: an `Identity` holds a stable, loggable id and the caller's groups, never the
token or secret it was established from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["SCHEDULER", "Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. `id` is stable and safe to log (never the token itself)."""

    id: str
    name: str
    kind: str  # "admin" | "token" | "machine-identity" | "serviceaccount" | "system"
    groups: tuple[str, ...] = field(default_factory=tuple)


# The process itself acting on a key's own policy (scheduled rotations, purges after the recovery
# window): the actor of their audit events. No auth backend issues a "system:" id (theirs are
# "admin", "token:", "identity:", a Kubernetes uid or "user:"), so it cannot be impersonated.
SCHEDULER: Final = Identity(id="system:lifecycle-scheduler", name="lifecycle-scheduler", kind="system")
