"""ServiceAccount auth: the action -> verb mapping, review caching and failing closed.

The reviewer is a real HTTP server on loopback answering TokenReview and SubjectAccessReview from
the test RBAC table (tests/kube/rbac.py); it can be switched to fail with 500 or be stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kms_api.auth.kubernetes import ACTION_VERBS, KubernetesAuth, rbac_verb
from kms_api.http.error_replies import status_of
from kms_api.http.limits import AddressAttempt, FailedAuthLimiter
from kms_core.errors import PermissionDenied, RateLimited, TokenError, Unavailable
from kms_kube.client import KubeClient
from kms_kube.config import KubeConfig
from kube.rbac import Rbac

INFISICAL_ACTIONS = {
    "read": "get", "create": "create", "edit": "update", "delete": "delete", "encrypt": "encrypt",
    "decrypt": "decrypt", "sign": "sign", "verify": "verify", "rotate": "rotate",
    "generate-mac": "generate-mac", "verify-mac": "verify-mac",
    "derive-shared-secret": "derive-shared-secret", "export-private-key": "export",
    "restore": "restore",
}


@pytest.mark.parametrize(("action", "verb"), sorted(INFISICAL_ACTIONS.items()))
def test_every_infisical_action_maps_to_its_verb(action: str, verb: str) -> None:
    assert rbac_verb(action, "some-key") == verb


def test_read_without_a_key_name_is_list() -> None:
    assert rbac_verb("read", None) == "list"
    assert rbac_verb("create", None) == "create"
    assert rbac_verb("restore", None) == "restore"  # listing deleted keys is not `list` on live ones
    assert set(ACTION_VERBS) == set(INFISICAL_ACTIONS)


def test_unknown_action_has_no_verb() -> None:
    with pytest.raises(KeyError):
        rbac_verb("export", "k")


@dataclass
class Reviewer:
    rbac: Rbac
    server: TestServer
    fail: bool = False
    calls: int = 0
    # What a reviewer that ignores audiences answers: "drop" removes status.audiences, "empty" sets [].
    audiences: str = "keep"

    def client(self) -> KubeClient:
        return KubeClient(KubeConfig(server=str(self.server.make_url("")).rstrip("/")), timeout=2.0)


@pytest.fixture
async def reviewer() -> AsyncIterator[Reviewer]:
    rbac = Rbac()
    app = web.Application()
    state: dict[str, Reviewer] = {}

    async def review(request: web.Request) -> web.Response:
        r = state["r"]
        r.calls += 1
        if r.fail:
            return web.json_response({"kind": "Status", "code": 500, "reason": "InternalError",
                                      "message": "etcd is down"}, status=500)
        body = await request.json()
        kind = request.match_info["kind"]
        result = rbac.token_review(body) if kind == "tokenreviews" else rbac.access_review(body)
        if kind == "tokenreviews" and r.audiences != "keep":
            result["status"].pop("audiences", None)
            if r.audiences == "empty":
                result["status"]["audiences"] = []
        return web.json_response(result, status=201)

    app.router.add_post("/apis/{group}/v1/{kind}", review)
    server = TestServer(app)
    await server.start_server()
    state["r"] = Reviewer(rbac, server)
    yield state["r"]
    await server.close()


async def test_valid_token_authenticates_and_is_cached(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app")
    auth = KubernetesAuth(reviewer.client(), ttl=10.0)
    try:
        ident = await auth.authenticate(token)
        assert ident.name == "system:serviceaccount:team-a:app"
        assert "system:serviceaccounts:team-a" in ident.groups
        assert ident.kind == "serviceaccount" and token not in ident.id
        again = await asyncio.gather(*(auth.authenticate(token) for _ in range(5)))
        assert all(i == ident for i in again)
        assert reviewer.calls == 1
    finally:
        await auth.client.close()


async def test_concurrent_first_requests_share_one_review(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app")
    auth = KubernetesAuth(reviewer.client(), ttl=10.0)
    try:
        results = await asyncio.gather(*(auth.authenticate(token) for _ in range(10)))
        assert len({r.id for r in results}) == 1
        assert reviewer.calls == 1
    finally:
        await auth.client.close()


async def test_unknown_token_is_token_error(reviewer: Reviewer) -> None:
    auth = KubernetesAuth(reviewer.client())
    try:
        with pytest.raises(TokenError) as info:
            await auth.authenticate("not-a-token")
        assert status_of(info.value) == (403, "TokenError") and "not-a-token" not in info.value.message
        with pytest.raises(TokenError):
            await auth.authenticate("")
    finally:
        await auth.client.close()


async def test_wrong_audience_is_token_error(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app", audiences=["vault"])
    auth = KubernetesAuth(reviewer.client(), audiences=["kubekms"])
    try:
        with pytest.raises(TokenError):
            await auth.authenticate(token)
        assert reviewer.rbac.reviews[-1]["audiences"] == ["kubekms"]
    finally:
        await auth.client.close()


async def test_revoked_token_is_refused_once_the_ttl_expires(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app")
    auth = KubernetesAuth(reviewer.client(), ttl=0.2)
    try:
        await auth.authenticate(token)
        reviewer.rbac.revoke(token)
        await auth.authenticate(token)  # still cached
        await asyncio.sleep(0.25)
        with pytest.raises(TokenError):
            await auth.authenticate(token)
    finally:
        await auth.client.close()


async def test_access_review_asks_the_mapped_verb_and_caches(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app")
    user = "system:serviceaccount:team-a:app"
    reviewer.rbac.allow(user, ["encrypt", "list"], namespace="team-a")
    auth = KubernetesAuth(reviewer.client())
    try:
        ident = await auth.authenticate(token)
        await auth.authorize(ident, "encrypt", "team-a", "k1")
        await auth.authorize(ident, "read", "team-a", None)
        with pytest.raises(PermissionDenied) as info:
            await auth.authorize(ident, "decrypt", "team-a", "k1")
        assert info.value.message == "You are not allowed to decrypt on cmek"
        with pytest.raises(PermissionDenied) as info:
            await auth.authorize(ident, "encrypt", "team-b", "k1")
        with pytest.raises(PermissionDenied) as info:
            await auth.authorize(ident, "export-private-key", "team-a", "k1")
        assert info.value.message == "You are not allowed to export-private-key on cmek"
        sars = [r for r in reviewer.rbac.reviews if r["kind"] == "SubjectAccessReview"]
        assert [(r["verb"], r["namespace"], r.get("name")) for r in sars] == [
            ("encrypt", "team-a", "k1"), ("list", "team-a", None), ("decrypt", "team-a", "k1"),
            ("encrypt", "team-b", "k1"), ("export", "team-a", "k1"),
        ]
        assert all(r["group"] == "kubekms.io" and r["resource"] == "kmskeys" for r in sars)
        calls = reviewer.calls
        await auth.authorize(ident, "encrypt", "team-a", "k1")
        with pytest.raises(PermissionDenied):
            await auth.authorize(ident, "decrypt", "team-a", "k1")
        assert reviewer.calls == calls  # both decisions came from the cache
    finally:
        await auth.client.close()


async def test_unknown_action_is_denied_without_asking(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app")
    reviewer.rbac.allow("system:serviceaccount:team-a:app", ["*"])
    auth = KubernetesAuth(reviewer.client())
    try:
        ident = await auth.authenticate(token)
        with pytest.raises(PermissionDenied):
            await auth.authorize(ident, "launch-missiles", "team-a", "k1")
        assert reviewer.calls == 1
    finally:
        await auth.client.close()


async def test_reviewer_errors_fail_closed_with_503(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app")
    reviewer.rbac.allow("system:serviceaccount:team-a:app", ["*"])
    auth = KubernetesAuth(reviewer.client())
    try:
        ident = await auth.authenticate(token)
        reviewer.fail = True
        with pytest.raises(Unavailable) as info:
            await auth.authorize(ident, "encrypt", "team-a", "k1")
        assert status_of(info.value)[0] == 503
        with pytest.raises(Unavailable):
            await auth.authenticate(reviewer.rbac.add_service_account("team-a", "other"))
        reviewer.fail = False
        await auth.authorize(ident, "encrypt", "team-a", "k1")  # errors were not cached
    finally:
        await auth.client.close()


async def test_unreachable_reviewer_fails_closed_with_503(reviewer: Reviewer) -> None:
    client = reviewer.client()
    await reviewer.server.close()
    auth = KubernetesAuth(client)
    try:
        with pytest.raises(Unavailable) as info:
            await auth.authenticate("any-token")
        assert "any-token" not in info.value.message
    finally:
        await client.close()


async def test_token_for_the_configured_audience_authenticates(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app", audiences=["kubekms"])
    auth = KubernetesAuth(reviewer.client(), audiences=["kubekms"])
    try:
        ident = await auth.authenticate(token)
        assert ident.name == "system:serviceaccount:team-a:app"
    finally:
        await auth.client.close()


@pytest.mark.parametrize("answer", ["drop", "empty"])
async def test_no_audiences_in_the_review_is_no_grant(reviewer: Reviewer, answer: str) -> None:
    """A reviewer that authenticates but returns no audiences has not vouched for ours."""
    token = reviewer.rbac.add_service_account("team-a", "app", audiences=["kubekms"])
    reviewer.audiences = answer
    auth = KubernetesAuth(reviewer.client(), audiences=["kubekms"])
    try:
        with pytest.raises(TokenError):
            await auth.authenticate(token)
    finally:
        await auth.client.close()
    # Without a configured audience the API server's default applies and nothing is required back.
    default_token = reviewer.rbac.add_service_account("team-a", "app")
    auth = KubernetesAuth(reviewer.client())
    try:
        assert (await auth.authenticate(default_token)).name == "system:serviceaccount:team-a:app"
    finally:
        await auth.client.close()


async def test_a_returned_audience_we_did_not_ask_for_is_no_grant(reviewer: Reviewer) -> None:
    token = reviewer.rbac.add_service_account("team-a", "app", audiences=["kubekms"])
    auth = KubernetesAuth(reviewer.client(), audiences=["kubekms-prod"])
    try:
        with pytest.raises(TokenError):
            await auth.authenticate(token)
    finally:
        await auth.client.close()


def test_emulator_reviews_audiences_like_kube_apiserver() -> None:
    rbac = Rbac()
    kms_only = rbac.add_service_account("team-a", "app", audiences=["kubekms"])
    both = rbac.add_service_account("team-a", "app", audiences=["https://kubernetes.default.svc", "kubekms"])

    def review(token: str, *audiences: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        status: dict[str, Any] = rbac.token_review({"spec": spec})["status"]
        return status

    # No spec.audiences: the target is the API server's own audience, which a kubekms token lacks.
    assert review(kms_only)["authenticated"] is False
    assert review(both)["audiences"] == ["https://kubernetes.default.svc"]
    # status.audiences is the intersection with what was asked; no intersection, no authentication.
    assert review(kms_only, "kubekms", "vault")["audiences"] == ["kubekms"]
    assert review(both, "kubekms")["audiences"] == ["kubekms"]
    denied = review(kms_only, "vault")
    assert denied["authenticated"] is False and "audiences" not in denied and "user" not in denied


async def test_decisions_are_cached_per_subject_not_per_identity_id(reviewer: Reviewer) -> None:
    """Two tokens of one ServiceAccount (same uid) bound to different Pods are different subjects:
    each review carries its own token's extra, and one's decision is never served to the other."""
    pod = "authentication.kubernetes.io/pod-name"
    first = reviewer.rbac.add_service_account("team-a", "app", extra={pod: ["app-1"]})
    uid = reviewer.rbac.uid_of(first)
    second = reviewer.rbac.add_service_account("team-a", "app", uid=uid, extra={pod: ["app-2"]})
    reviewer.rbac.allow("system:serviceaccount:team-a:app", ["encrypt"], namespace="team-a")
    auth = KubernetesAuth(reviewer.client())
    try:
        one, two = await auth.authenticate(first), await auth.authenticate(second)
        assert one.id == two.id == uid  # the identity id alone cannot tell them apart
        for ident in (one, two, one, two):
            await auth.authorize(ident, "encrypt", "team-a", "k1")
        sars = [r for r in reviewer.rbac.reviews if r["kind"] == "SubjectAccessReview"]
        assert [(r["uid"], r["extra"]) for r in sars] == [(uid, {pod: ["app-1"]}), (uid, {pod: ["app-2"]})]
        # Different groups are a different subject too.
        regrouped = type(one)(id=one.id, name=one.name, kind=one.kind, groups=("system:authenticated",),
                              uid=uid, extra=one.extra)  # type: ignore[call-arg]
        await auth.authorize(regrouped, "encrypt", "team-a", "k1")
        sars = [r for r in reviewer.rbac.reviews if r["kind"] == "SubjectAccessReview"]
        assert len(sars) == 3 and sars[-1]["groups"] == ["system:authenticated"]
    finally:
        await auth.client.close()


async def test_concurrent_bad_tokens_of_one_address_cannot_overdraw_its_budget(reviewer: Reviewer) -> None:
    """Twenty different bad tokens at once from one address: only `burst` TokenReviews are sent,
    the rest are refused with 429 before the reviewer is contacted."""
    limiter = FailedAuthLimiter(0.001, 3)
    auth = KubernetesAuth(reviewer.client())
    valid = reviewer.rbac.add_service_account("team-a", "app")

    async def attempt(token: str) -> BaseException | None:
        try:
            await auth.authenticate(token, AddressAttempt(limiter, "address:10.0.0.9"))
        except (TokenError, RateLimited) as exc:
            if isinstance(exc, TokenError):
                limiter.spend("address:10.0.0.9")  # as the request binding does
            return exc
        return None

    try:
        outcomes = await asyncio.gather(*(attempt(f"guess-{i}") for i in range(20)))
        assert sum(isinstance(o, TokenError) for o in outcomes) == 3
        assert sum(isinstance(o, RateLimited) for o in outcomes) == 17
        assert reviewer.calls == 3
        # Even a valid token from the spent address is refused without a review...
        with pytest.raises(RateLimited):
            await auth.authenticate(valid, AddressAttempt(limiter, "address:10.0.0.9"))
        assert reviewer.calls == 3
        # ...while another address is reviewed as usual, and its success costs it nothing.
        other = AddressAttempt(limiter, "address:10.0.0.10")
        assert (await auth.authenticate(valid, other)).name == "system:serviceaccount:team-a:app"
        assert reviewer.calls == 4
        limiter.check("address:10.0.0.10")
    finally:
        await auth.client.close()
