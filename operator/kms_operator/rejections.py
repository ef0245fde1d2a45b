"""What a failed Kubernetes API call means for a reconciliation, and the bound on refused writes.

The client's error classes (`kms_kube.client`) decide the retry policy:
- `Conflict` (409, or a failed JSON-patch `test`): someone else wrote first; re-read and retry
  soon (0.5 s), forever: each retry starts from the newer object.
- `KubeUnavailable`, a retriable `ApiError` (5xx, 429), 401 (credentials being re-read) and 404
  (the object went away meanwhile): the API server's trouble, not the request's; retried with
  exponential backoff (`backoff`), forever.
- Any other `ApiError` (`permanent`: 400, 403, 413, 422 that is not a conflict: a CEL rule, the
  schema, a size limit, RBAC, an admission webhook): the same request fails again. The key shows
  `Degraded` with reason `ApiRejected` and the API server's message, one Warning Event says so,
  and the write is attempted at most `Settings.rejected_attempts` times for the same *desire*
  (the KmsKey's generation and its rotation request): a spec change, a new rotation request or
  an operator restart starts over.

The attempts are counted in memory (per process): losing them on a restart costs a few more
refused requests, never a wrong result.

Security property: a message is the API server's Status message about our request, which names
objects and fields; the operator only ever sends sealed material, ids and public keys, so no
plaintext material can be echoed into a status, an Event or a log line. Messages are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kms_kube import layout as m
from kms_kube.client import ApiError, KubeError, NotFound

REASON = "ApiRejected"
MAX_DELAY = 60.0
_MAX_MESSAGE = 900  # below an Event's 1024 with the prefix


def backoff(base: float, attempt: int) -> float:
    """The delay before retry `attempt` (0-based): base, 2*base, 4*base, ... capped at a minute."""
    return float(min(base * 2 ** min(attempt, 16), MAX_DELAY))


def is_rejection(error: KubeError) -> bool:
    """A verdict on the request itself (see the module docstring); 404 is not one here: the
    object vanished meanwhile, and the next attempt sees that."""
    return isinstance(error, ApiError) and error.permanent and not isinstance(error, NotFound)


def describe(error: ApiError) -> str:
    """The condition and Event message: status, reason and the API server's own words."""
    text = f"the API server rejected a write ({error.status} {error.reason}): {error.message}"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def desire_of(key: dict[str, Any]) -> tuple[Any, ...]:
    """What the user asked for: a change here starts the attempts over."""
    meta = key.get("metadata") or {}
    deleting = bool(meta.get("deletionTimestamp"))
    return (meta.get("uid"), meta.get("generation"), m.annotations_of(key).get(m.ROTATE), deleting)


@dataclass
class _Count:
    desire: tuple[Any, ...]
    attempts: int


@dataclass
class Rejections:
    """Refused attempts per KmsKey, for its current desire."""

    _counts: dict[tuple[str, str], _Count] = field(default_factory=dict)

    def record(self, key: tuple[str, str], desire: tuple[Any, ...]) -> int:
        """Count one more refused attempt; returns how many there were for this desire."""
        count = self._counts.get(key)
        if count is None or count.desire != desire:
            count = self._counts[key] = _Count(desire, 0)
        count.attempts += 1
        return count.attempts

    def attempts(self, key: tuple[str, str], desire: tuple[Any, ...]) -> int:
        count = self._counts.get(key)
        return count.attempts if count is not None and count.desire == desire else 0

    def clear(self, key: tuple[str, str]) -> None:
        self._counts.pop(key, None)
