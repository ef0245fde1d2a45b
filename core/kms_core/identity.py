"""Who is calling: the identity an auth backend established, handed to the service as a value.

Security property: an `Identity` holds a stable, loggable id and the caller's groups, never the
token or secret it was established from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. `id` is stable and safe to log (never the token itself)."""

    id: str
    name: str
    kind: str  # "admin" | "token" | "machine-identity" | "serviceaccount"
    groups: tuple[str, ...] = field(default_factory=tuple)
