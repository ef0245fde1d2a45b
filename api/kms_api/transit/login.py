"""Vault's `auth/kubernetes/login` in Kubernetes mode: a ServiceAccount JWT for a client token.

`POST /v1/auth/kubernetes/login` with `{"role": "...", "jwt": "..."}` reviews the JWT as the
Infisical and Transit routes review a bearer token (TokenReview, the same `--token-audience`
rules) and answers Vault's login envelope; the client token (`kms_api.auth.clienttokens`) is
then accepted as `X-Vault-Token` or `Authorization: Bearer` and acts as that ServiceAccount:
every operation is still a SubjectAccessReview of its verb on `kmskeys`.

`role` is required, as in Vault, but grants nothing: KubeKMS has no Vault roles or policies,
RBAC decides. Any non-empty name is accepted, echoed in `auth.metadata.role` and audited.

In embedded mode there is no Kubernetes auth mount: the path answers as Vault does for an
unmounted one (403 `permission denied` without a valid token, else 404 no handler).

Security property: the route is public but budgeted — a failed login spends the client
address's failed-authentication budget, checked before the TokenReview; every attempt is
audited with the role and client address, never the JWT; a failed review is the same
`permission denied` for a forged, expired or foreign-audience JWT.
"""

from __future__ import annotations

import time
from typing import Any, Final

from aiohttp import web

from kms_api.appstate import auth_of
from kms_api.auth.kubernetes import ServiceAccountIdentity
from kms_api.http.json_body import DEFAULT_LIMIT
from kms_api.http.limits import FAILED_AUTH, AddressAttempt, client_address
from kms_api.pipeline.binding import admit, bind
from kms_api.pipeline.call import Call
from kms_api.pipeline.route import Audit, Route
from kms_api.transit.envelope import VaultError, wrap
from kms_api.transit.inputs import read_body, text, vault_token
from kms_core.errors import TokenError
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["LOGIN_EVENT", "ROUTES", "add_routes", "kubernetes_login"]

PATH: Final = "/v1/auth/kubernetes/login"
LOGIN_EVENT: Final = "login-identity-kubernetes-auth"  # Infisical's event name for this auth
POLICIES: Final = ("default",)
_MAX_ROLE: Final = 128
_SERVICE_ACCOUNT: Final = "system:serviceaccount:"


def login_attempt(call: Call, outcome: Outcome[Any] | None) -> dict[str, Any]:
    """Who tried: the role asked for and the client address (never the JWT); the ServiceAccount
    on success."""
    role = call.body.get("role")
    meta: dict[str, Any] = {
        "role": role[:_MAX_ROLE] if isinstance(role, str) else None,
        "clientAddress": call.request.remote,
    }
    if outcome is not None and isinstance(outcome.result, dict):
        meta["serviceAccount"] = outcome.result["auth"]["metadata"]["service_account_name"]
        meta["accessor"] = outcome.result["auth"]["accessor"]
    return meta


def _account(identity: Any) -> tuple[str, str]:
    """(namespace, name) of a ServiceAccount user name `system:serviceaccount:<ns>:<name>`."""
    name = str(identity.name)
    if name.startswith(_SERVICE_ACCOUNT):
        namespace, _, account = name[len(_SERVICE_ACCOUNT) :].partition(":")
        return namespace, account
    return "", name


async def kubernetes_login(call: Call) -> Outcome[dict[str, Any]]:
    request = call.request
    body = await read_body(request, DEFAULT_LIMIT)
    role = text(body.get("role"), "role")
    call.body = {"role": role}
    if not role:
        raise VaultError(400, "missing role")
    service_account_jwt = text(body.get("jwt"), "jwt")
    if not service_account_jwt:
        raise VaultError(400, "missing jwt")
    login = getattr(auth_of(request.app), "vault_login", None)
    if login is None:  # the mode changed under a bound route: never happens, fail closed
        raise TokenError("no Kubernetes auth")
    failed = request.app.get(FAILED_AUTH)
    address = client_address(request)
    if failed is not None:
        failed.check(address)  # again after the body read
    try:
        identity, token = await login(
            service_account_jwt, AddressAttempt(failed, address) if failed is not None else None
        )
    except TokenError:
        if failed is not None:
            failed.spend(address)
        raise
    namespace, account = _account(identity)
    uid = identity.uid if isinstance(identity, ServiceAccountIdentity) else ""
    lease = max(0, token.expires_at - int(time.time()))
    envelope = wrap(None)
    envelope["auth"] = {
        "client_token": token.token,
        "accessor": token.accessor,
        "policies": list(POLICIES),
        "token_policies": list(POLICIES),
        "identity_policies": None,
        "metadata": {
            "role": role,
            "service_account_name": account,
            "service_account_namespace": namespace,
            "service_account_secret_name": "",
            "service_account_uid": uid,
        },
        "lease_duration": lease,
        "renewable": False,  # log in again: the ServiceAccount JWT is the renewable credential
        "entity_id": identity.id,
        "token_type": "service",
        "orphan": True,
        "mfa_requirement": None,
        "num_uses": 0,
    }
    return Outcome(envelope, None, namespace or None)


def _reply(call: Call, outcome: Outcome[Any]) -> Any:
    return outcome.result


ROUTES: tuple[Route, ...] = tuple(
    Route(
        method=method, path=PATH, name="vaultKubernetesLogin", summary="Kubernetes auth login",
        handler=kubernetes_login, encode=_reply, audit=Audit(LOGIN_EVENT, login_attempt, on_failure=True),
        action=None, public=True, checks_credentials=True,
    )
    for method in ("POST", "PUT")
)

# Embedded mode's view of the path: authenticated like any unknown `/v1/` path.
_UNMOUNTED: Final = Route(
    method="*", path=PATH, name="vaultUnknownPath", summary="Unknown Vault path",
    handler=kubernetes_login, encode=_reply, audit=Audit("transit-unknown-path"), action=Action.READ,
    token=vault_token,
)


def add_routes(app: web.Application) -> None:
    """Register the login; which backend answers is decided per request (the backend is built
    at startup, after the routes)."""
    bound = bind(ROUTES[0])

    async def dispatch(request: web.Request) -> web.StreamResponse:
        if getattr(auth_of(request.app), "vault_login", None) is None:
            await admit(request, _UNMOUNTED)
            raise VaultError(404, 'no handler for route "auth/kubernetes/login". route entry not found.')
        return await bound(request)

    for route in ROUTES:
        app.router.add_route(route.method, route.path, dispatch, name=route.name + route.method.title())
