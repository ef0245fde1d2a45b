"""What a view receives: the validated parts of one request, plus its caller's authorizer.

Security property: `authz` is bound to the identity authenticated for this request, so a view
cannot check permissions for anyone else; the service calls it at the spec's point of the check
order (after existence and disabled checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kms_api.appkeys import ALGORITHM, IDENTITY, PROJECT, auth_of, service_of
from kms_api.auth.base import Identity

if TYPE_CHECKING:
    from kms_core.service import KeyService


@dataclass(slots=True)
class Call:
    request: web.Request
    params: dict[str, Any]
    query: dict[str, Any]
    body: dict[str, Any]

    @property
    def service(self) -> KeyService:
        return service_of(self.request.app)

    @property
    def identity(self) -> Identity:
        identity: Identity = self.request[IDENTITY]
        return identity

    @property
    def key_id(self) -> str:
        key_id: str = self.params["keyId"]
        return key_id

    async def authz(self, action: str, project_id: str, key_name: str | None) -> None:
        self.request[PROJECT] = project_id  # recorded before the decision, so denials are audited with it
        await auth_of(self.request.app).authorize(self.identity, action, project_id, key_name)

    def note_algorithm(self, algorithm: str) -> None:
        """Label this request's metrics with a (bounded, enum-valued) algorithm name."""
        self.request[ALGORITHM] = algorithm


async def allow_all(action: str, project_id: str, key_name: str | None) -> None:
    """For internal follow-up lookups after an operation was already authorised."""
    return None
