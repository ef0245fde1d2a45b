"""Kubernetes-mode auth: ServiceAccount bearer tokens -> TokenReview; actions -> SubjectAccessReview.

Each Infisical action becomes a verb on `kmskeys.kubekms.io` in the key's namespace (the project),
so ordinary RBAC Roles decide who may encrypt with which key. Decisions are cached for a few
seconds with a size bound: token reviews keyed by a SHA-256 of the token, access decisions by
everything a SubjectAccessReview depends on (user name, uid, groups, extra, verb, namespace, name).
Security property: fail closed — an unauthenticated token is a TokenError, a token not issued for
a configured audience is a TokenError even when the reviewer says nothing about audiences, a
denial is PermissionDenied, and any failure to reach or understand the reviewer is 503, never
"allowed"; tokens are never logged or stored in clear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kms_api.auth import clienttokens
from kms_api.auth.base import Attempt, Identity
from kms_api.auth.ttlcache import TtlCache, token_digest
from kms_core.errors import PermissionDenied, TokenError, Unavailable
from kms_core.sealing.base import Sealer
from kms_kube.client import ApiError, JsonDict, KubeClient, KubeUnavailable
from kms_kube.layout import GROUP, PLURAL

log = logging.getLogger(__name__)

# Infisical action -> RBAC verb on kmskeys (ARCHITECTURE §5). "read" without a key name is a list.
ACTION_VERBS: dict[str, str] = {
    "read": "get",
    "create": "create",
    "edit": "update",
    "delete": "delete",
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "sign": "sign",
    "verify": "verify",
    "rotate": "rotate",
    "generate-mac": "generate-mac",
    "verify-mac": "verify-mac",
    "derive-shared-secret": "derive-shared-secret",
    "export-private-key": "export",
    # KubeKMS's own: list, restore and purge keys deleted within their recovery window. Only the
    # chart's kubekms-admin ClusterRole grants it.
    "restore": "restore",
}

INVALID_TOKEN = "The provided access token is invalid or expired. Please use a valid ServiceAccount token."
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


# `extra` of a TokenReview user, frozen so it can be part of a cache key: ((key, (values...)), ...).
Extra = tuple[tuple[str, tuple[str, ...]], ...]


def freeze_extra(extra: Mapping[str, Any] | None) -> Extra:
    """The user's `extra` as a sorted, hashable tuple (values keep their order, as RBAC sees them)."""
    if not extra:
        return ()
    def values(vs: Any) -> tuple[str, ...]:
        return (str(vs),) if isinstance(vs, str) else tuple(str(v) for v in vs or ())

    return tuple(sorted((str(k), values(vs)) for k, vs in extra.items()))


@dataclass(frozen=True, slots=True)
class ServiceAccountIdentity(Identity):
    """An Identity with the rest of the TokenReview user: what a SubjectAccessReview must repeat.

    Carried with the identity (not looked up by id) so two tokens of one ServiceAccount with
    different `extra` (e.g. bound to different Pods) are never reviewed or cached as each other.
    """

    uid: str = ""
    extra: Extra = field(default_factory=tuple)


def rbac_verb(action: str, key_name: str | None) -> str:
    """The verb a SubjectAccessReview checks for `action`; KeyError for an unknown action."""
    if action == "read" and key_name is None:
        return "list"
    return ACTION_VERBS[action]


class KubernetesAuth:
    """AuthBackend backed by the API server's TokenReview and SubjectAccessReview APIs."""

    def __init__(
        self,
        client: KubeClient,
        *,
        audiences: Sequence[str] = (),
        ttl: float = 10.0,
        max_entries: int = 10_000,
        sealer: Sealer | None = None,
    ) -> None:
        self.client = client
        # Seals the client tokens of `auth/kubernetes/login` (kms_api.auth.clienttokens); the
        # KEK every replica shares, so any replica accepts a token another issued.
        self._sealer = sealer
        self.audiences = list(audiences)
        # digest -> Identity, or False for a token the reviewer rejected (cached too: cheap to replay).
        self._tokens: TtlCache[str, Identity | bool] = TtlCache(ttl, max_entries)
        # Keyed by every input of the review (see `_decision_key`): a decision made for one
        # subject is never served to another that merely shares its identity id.
        self._decisions: TtlCache[DecisionKey, bool] = TtlCache(ttl, max_entries)
        self._inflight: dict[str, asyncio.Future[Identity | bool]] = {}

    async def authenticate(self, token: str, attempt: Attempt | None = None) -> Identity:
        if not token:
            raise TokenError(INVALID_TOKEN)
        # A client token's expiry is checked on every use, before the cache: a cached review
        # never outlives the token.
        if clienttokens.is_client_token(token) and time.time() >= clienttokens.expiry_of(token):
            raise TokenError(clienttokens.EXPIRED)
        digest = token_digest(token)
        result = self._tokens.get(digest)
        if result is None:
            # One review per token at a time: concurrent first requests share it.
            task = self._inflight.get(digest)
            if task is None:
                # A client out of failed-authentication budget is refused here, before the API
                # server sees a TokenReview; the hold keeps concurrent attempts from overdrawing.
                if attempt is not None:
                    attempt.hold()
                task = asyncio.ensure_future(self._review_token(token, digest))
                self._inflight[digest] = task
                task.add_done_callback(lambda _t: self._reviewed(digest, attempt))
            result = await asyncio.shield(task)
        if not isinstance(result, Identity):
            raise TokenError(INVALID_TOKEN)
        return result

    def _reviewed(self, digest: str, attempt: Attempt | None) -> None:
        self._inflight.pop(digest, None)
        if attempt is not None:
            attempt.release()

    async def _review_token(self, token: str, digest: str) -> Identity | bool:
        if clienttokens.is_client_token(token):
            # A login's client token acts as the ServiceAccount JWT sealed inside it, reviewed
            # again (same audiences), so a revoked JWT revokes the token.
            if self._sealer is None:
                return False
            try:
                token = clienttokens.open_token(self._sealer, token)
            except TokenError:
                self._tokens.put(digest, False)
                return False
            if clienttokens.is_client_token(token):
                return False
        spec: JsonDict = {"token": token}
        if self.audiences:
            spec["audiences"] = self.audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        status = (await self._review(TOKEN_REVIEWS, body, "TokenReview")).get("status") or {}
        identity: Identity | None = None
        user = status.get("user") or {}
        if status.get("authenticated") is True and user.get("username") and self._audiences_ok(status):
            uid = str(user.get("uid") or "")
            identity = ServiceAccountIdentity(
                id=uid or f"user:{user['username']}",
                name=str(user["username"]),
                kind="serviceaccount",
                groups=tuple(str(g) for g in user.get("groups") or ()),
                uid=uid,
                extra=freeze_extra(user.get("extra")),
            )
        result: Identity | bool = identity if identity is not None else False
        self._tokens.put(digest, result)
        return result

    def _audiences_ok(self, status: Mapping[str, Any]) -> bool:
        """Only an audience the reviewer explicitly returned counts (kube-apiserver returns the
        intersection of the token's audiences and ours). An empty or missing `status.audiences`
        is no grant: a reviewer that ignores audiences (an old or webhook authenticator) would
        otherwise let a token minted for the Kubernetes API, or for another service, in here."""
        if not self.audiences:
            return True  # no audience configured: the API server's own default applies
        granted = status.get("audiences")
        if not isinstance(granted, list):
            return False
        return bool(set(self.audiences) & {str(a) for a in granted})

    async def vault_login(
        self, service_account_jwt: str, attempt: Attempt | None = None
    ) -> tuple[Identity, clienttokens.ClientToken]:
        """Vault's `auth/kubernetes/login`: review the ServiceAccount JWT exactly as a bearer
        token (TokenError when the API server does not authenticate it for our audiences) and
        seal it into a client token (`kms_api.auth.clienttokens`). A client token is not a JWT:
        it cannot be exchanged for another."""
        if clienttokens.is_client_token(service_account_jwt) or self._sealer is None:
            raise TokenError(INVALID_TOKEN)
        identity = await self.authenticate(service_account_jwt, attempt)
        return identity, clienttokens.issue(self._sealer, service_account_jwt)

    async def authorize(self, identity: Identity, action: str, project_id: str, key_name: str | None) -> None:
        try:
            verb = rbac_verb(action, key_name)
        except KeyError:
            raise PermissionDenied(action) from None  # an action we cannot map is never allowed
        cache_key = _decision_key(identity, verb, project_id, key_name)
        allowed = self._decisions.get(cache_key)
        if allowed is None:
            allowed = await self._access_review(identity, verb, project_id, key_name)
            self._decisions.put(cache_key, allowed)
        if not allowed:
            raise PermissionDenied(action)

    async def _access_review(self, identity: Identity, verb: str, namespace: str, name: str | None) -> bool:
        attributes: JsonDict = {"group": GROUP, "resource": PLURAL, "verb": verb, "namespace": namespace}
        if name is not None:
            attributes["name"] = name
        spec: JsonDict = {
            "resourceAttributes": attributes, "user": identity.name, "groups": list(identity.groups),
        }
        if isinstance(identity, ServiceAccountIdentity):
            if identity.uid:
                spec["uid"] = identity.uid
            if identity.extra:
                spec["extra"] = {k: list(v) for k, v in identity.extra}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        status = (await self._review(ACCESS_REVIEWS, body, "SubjectAccessReview")).get("status") or {}
        return status.get("allowed") is True and status.get("denied") is not True

    async def _review(self, path: str, body: JsonDict, kind: str) -> JsonDict:
        """POST a review; every failure is 503 (fail closed). Bodies are never logged (tokens)."""
        try:
            return await self.client.create(path, body)
        except KubeUnavailable:
            raise Unavailable(f"Cannot reach the Kubernetes API to perform a {kind}") from None
        except ApiError as exc:
            log.error("%s failed: %s %s", kind, exc.status, exc.reason)
            raise Unavailable(f"The Kubernetes API could not perform a {kind} ({exc.status})") from None

    async def close(self) -> None:
        self._tokens.clear()
        self._decisions.clear()


# (user name, uid, groups, extra, verb, namespace, key name or "")
DecisionKey = tuple[str, str, tuple[str, ...], Extra, str, str, str]


def _decision_key(identity: Identity, verb: str, namespace: str, name: str | None) -> DecisionKey:
    """Everything the SubjectAccessReview for this decision sends, so equal keys mean equal reviews."""
    if isinstance(identity, ServiceAccountIdentity):
        return (identity.name, identity.uid, identity.groups, identity.extra, verb, namespace, name or "")
    return (identity.name, "", identity.groups, (), verb, namespace, name or "")
