"""What a service operation did: the `Outcome` it returns, and the same facts on its failures.

The HTTP binding fills audit events and metrics from these, so nothing has to report back
into the request while the operation runs, and no reply has to be parsed to learn which key,
project or algorithm an operation used.

A failure carries what was established before it: the project once the policy was asked about
it, and the key record once the key passed the existence, permission and disabled checks
(`failure_of`). Security property: outcomes hold key records and results only as the service
returns them to the caller anyway; they never hold material beyond what the result itself is,
and the failure context holds no result at all.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

from kms_core.model import Key

__all__ = ["Outcome", "attach", "failure_of"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# The attribute a failure's context is kept under (every exception instance has a __dict__).
_CONTEXT: Final = "kubekms_outcome"


class Outcome(Generic[T_co]):
    """One operation's result with the key record it acted on (None for project-wide operations
    such as list and import) and the project it was authorised in (None when no policy was asked:
    public operations)."""

    __slots__ = ("key", "project", "result")

    def __init__(self, result: T_co, key: Key | None = None, project: str | None = None) -> None:
        self.result = result
        self.key = key
        self.project = project if key is None or project is not None else key.project_id

    def __repr__(self) -> str:  # the result may be plaintext or material: never shown
        key_id = self.key.id if self.key is not None else None
        return f"Outcome(key={key_id}, project={self.project})"


def attach(exc: BaseException, project: str, key: Key | None = None) -> None:
    """Record on `exc` what the failed operation had established (first attachment wins: it is
    the one nearest the failure)."""
    context = vars(exc)
    if _CONTEXT not in context:
        context[_CONTEXT] = Outcome(None, key, project)


def failure_of(exc: BaseException) -> Outcome[None] | None:
    """The context `attach` recorded on `exc`, if any."""
    found: Outcome[None] | None = vars(exc).get(_CONTEXT)
    return found
