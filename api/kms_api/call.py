"""What a view receives: the validated parts of one request, plus its caller's authorizer.

Security property: `authz` is bound to the identity authenticated for this request, so a view
cannot check permissions for anyone else; the service calls it at the spec's point of the check
order (after existence and disabled checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kms_api.appkeys import auth_of, exchange_of, service_of
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
        identity = exchange_of(self.request).identity
        if identity is None:
            raise RuntimeError("the request was not authenticated")
        return identity

    @property
    def key_id(self) -> str:
        key_id: str = self.params["keyId"]
        return key_id

    async def authz(self, action: str, project_id: str, key_name: str | None) -> None:
        exchange = exchange_of(self.request)
        exchange.project = project_id  # recorded before the decision, so denials are audited with it
        if exchange.identity is None:
            raise RuntimeError("the request was not authenticated")
        await auth_of(self.request.app).authorize(exchange.identity, action, project_id, key_name)

    def note_algorithm(self, algorithm: str) -> None:
        """Label this request's metrics with a (bounded, enum-valued) algorithm name."""
        exchange_of(self.request).algorithm = algorithm

    @property
    def algorithm(self) -> str:
        """The algorithm noted for this request ("" when none was)."""
        return exchange_of(self.request).algorithm
