"""Unauthenticated handlers: health, readiness, the OpenAPI document, and universal-auth login (spec §4).

Security property: login answers one fixed message for an unknown client id and a wrong secret,
so it does not reveal which identities exist; a failed login spends the client address's
failed-authentication budget, checked before the secret is hashed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kms_api.appstate import OPENAPI, auth_of, service_of
from kms_api.http.limits import FAILED_AUTH, client_address
from kms_api.pipeline.call import Call
from kms_core.errors import BadRequest, Unauthorized
from kms_core.outcome import Outcome

Json = dict[str, Any]
_OK: Outcome[Json] = Outcome({"status": "ok"})


def reply(call: Call, outcome: Outcome[Any]) -> Any:
    """These handlers' results are their replies (a JSON object or a ready response)."""
    return outcome.result


async def healthz(call: Call) -> Outcome[Json]:
    return _OK


async def readyz(call: Call) -> Outcome[Json]:
    await service_of(call.request.app).ready()
    return _OK


async def openapi(call: Call) -> Outcome[web.Response]:
    return Outcome(web.Response(body=call.request.app[OPENAPI], content_type="application/json"))


async def universal_auth_login(call: Call) -> Outcome[Json]:
    backend = auth_of(call.request.app)
    login = getattr(backend, "login", None)
    if login is None:
        raise BadRequest(
            "Universal auth is not available: this server accepts Kubernetes ServiceAccount tokens"
        )
    failed = call.request.app.get(FAILED_AUTH)
    address = client_address(call.request)
    if failed is not None:
        failed.check(address)  # again after the body read: no await between here and the outcome
    try:
        result = await login(call.body["clientId"], call.body["clientSecret"])
    except Unauthorized:
        if failed is not None:
            failed.spend(address)
        raise
    return Outcome(
        {
            "accessToken": result.access_token,
            "expiresIn": result.expires_in,
            "accessTokenMaxTTL": result.max_ttl,
            "tokenType": "Bearer",
        }
    )
