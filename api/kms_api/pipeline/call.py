"""What a route handler receives: the validated parts of one request and its caller's identity.

Security property: `identity` is the one authenticated for this request (None only on public
routes); handlers hand it to the service as a value, and the service's policy decides with it,
so a handler cannot act for anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kms_api.appstate import service_of
from kms_api.auth.base import Identity

if TYPE_CHECKING:
    from kms_core.service import KeyService


@dataclass(slots=True)
class Call:
    request: web.Request
    params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    identity: Identity | None = None

    @property
    def service(self) -> KeyService:
        return service_of(self.request.app)

    @property
    def caller(self) -> Identity:
        """The authenticated identity (a programming error on a public route)."""
        identity = self.identity
        if identity is None:
            raise RuntimeError("the request was not authenticated")
        return identity

    @property
    def key_id(self) -> str:
        key_id: str = self.params["keyId"]
        return key_id
