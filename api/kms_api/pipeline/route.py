"""One route, declared in one place: method, path, handler, encoder, audit event, action, schemas.

A dialect (Infisical's today, Vault Transit's next) is a tuple of `Route`s; the binding
(`kms_api.pipeline.binding`) turns each into an aiohttp handler, the OpenAPI document is generated from
them, and the registry test checks every authenticated route against the service.

Security property: a route that is not `public` cannot be declared without its audit event and
the action the service enforces for it (construction fails at import), so no authenticated
route is silently unaudited; audit metadata comes from the route's `describe` allow-list over
the operation's `Outcome`, never from request or reply bodies wholesale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kms_api.http.json_body import DEFAULT_LIMIT
from kms_api.pipeline.call import Call
from kms_api.schema.composite_fields import Schema
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["Audit", "Describe", "Encoder", "Handler", "Label", "Route", "TokenReader"]

# Calls one service method (or a system function) and returns what it did.
Handler = Callable[[Call], Awaitable[Outcome[Any]]]
# The reply body: a JSON-serialisable value, or a ready `web.StreamResponse`.
Encoder = Callable[[Call, Outcome[Any]], Any]
# Audit metadata (an allow-list of names, algorithms, versions, validity flags). The outcome is
# None for a failed request (only described when the event says `on_failure`).
Describe = Callable[[Call, Outcome[Any] | None], dict[str, Any]]
# Where a dialect's caller presents its token (Infisical: `Authorization: Bearer`; Transit also
# `X-Vault-Token`): the token, or raise Unauthorized (none) / TokenError (malformed).
TokenReader = Callable[[web.Request], str]
# The metrics `algorithm` label: (call, outcome or a failure's context, succeeded) -> an enum
# value or "". Bounded: only enum values may be returned.
Label = Callable[[Call, Outcome[Any] | None, bool], str]


@dataclass(frozen=True, slots=True)
class Audit:
    """The audit event a route emits: its type (Infisical's names, spec §6) and metadata."""

    type: str
    describe: Describe | None = None
    on_failure: bool = False  # describe failed requests too (login: who tried, from where)


@dataclass(frozen=True, kw_only=True)
class Route:
    method: str
    path: str
    name: str  # operationId; also the bounded `operation` metrics label
    summary: str
    handler: Handler
    encode: Encoder
    audit: Audit | None  # required for every authenticated route
    action: Action | None  # the permission the service checks (the registry test proves it)
    label: Label | None = None
    params: Schema | None = None
    query: Schema | None = None
    body: Schema | None = None
    body_limit: int = DEFAULT_LIMIT
    response: dict[str, Any] = field(default_factory=dict)
    public: bool = False
    checks_credentials: bool = False  # a public route that verifies secrets (login): budgeted
    token: TokenReader | None = None  # None: the `Authorization: Bearer` header (pipeline.binding)

    def __post_init__(self) -> None:
        if not self.public and (self.audit is None or self.action is None):
            raise ValueError(f"route {self.name}: an authenticated route declares its audit event and action")
        if self.public and self.action is not None:
            raise ValueError(f"route {self.name}: a public route has no caller to authorise")
