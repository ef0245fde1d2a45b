"""The contract every auth backend meets: turn a bearer token into an Identity, and decide actions.

Security property: backends fail closed — any doubt (invalid token, unreachable reviewer) raises;
nothing returns "allowed" by default.
"""

from __future__ import annotations

from typing import Protocol

from kms_core.identity import Identity
from kms_core.policy import Action

__all__ = ["Attempt", "AuthBackend", "BackendPolicy", "Identity"]


class Attempt(Protocol):
    """The failed-authentication budget of the client making one request (`kms_api.http.limits`)."""

    def hold(self) -> None:
        """Reserve one attempt before costly work that awaits (a TokenReview); raise
        kms_core.errors.RateLimited, before any of that work, when the client has none left."""
        ...

    def release(self) -> None:
        """End a `hold` once the costly work is done, whatever its outcome."""
        ...


class AuthBackend(Protocol):
    async def authenticate(self, token: str, attempt: Attempt | None = None) -> Identity:
        """Verify a bearer token. Raise kms_core.errors.TokenError when invalid or expired,
        kms_core.errors.Unavailable when the verifier cannot be reached (fail closed).

        A backend whose check awaits a remote verifier holds `attempt` for the duration of each
        remote call, so a client out of failed-authentication budget never causes one."""
        ...

    async def authorize(
        self, identity: Identity, action: str, project_id: str, key_name: str | None
    ) -> None:
        """Allow or raise kms_core.errors.PermissionDenied(action) (or Forbidden for non-members).

        `action` is Infisical's action string (read, create, edit, delete, encrypt, decrypt, sign,
        verify, export-private-key, generate-mac, verify-mac, rotate, derive-shared-secret)."""
        ...

    async def close(self) -> None: ...


class BackendPolicy:
    """An auth backend's decisions as the `kms_core.policy.Policy` the key service is built with.

    Security property: the service asks the same backend that authenticated the caller, with the
    identity the binding established for this request and nothing else."""

    __slots__ = ("_backend",)

    def __init__(self, backend: AuthBackend) -> None:
        self._backend = backend

    async def check(self, identity: Identity, action: Action, project: str, key_name: str | None) -> None:
        await self._backend.authorize(identity, action, project, key_name)
