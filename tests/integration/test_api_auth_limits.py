"""The failed-authentication budget per client address over real HTTP (embedded mode), and the
audit trail of failed logins.

A spent budget answers 429 even to valid credentials: that is how these tests see that the
budget is checked before the token or secret is (a check after it would let the valid ones in).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest

from fixtures.api import ADMIN, ROBOT_ID, ROBOT_SECRET, Api, P

KEYS = f"/api/v1/kms/keys?projectId={P}"
LOGIN = "/api/v1/auth/universal-auth/login"


@pytest.fixture
async def strict(aiohttp_client: Any, api_settings: Any) -> Api:
    """The API with a budget of 3 failed authentications per address, refilled very slowly."""
    from kms_api.app import create_app

    settings = dataclasses.replace(api_settings, auth_fail_burst=3, auth_fail_rate=0.001)
    return Api(await aiohttp_client(create_app(settings)))


def _assert_rate_limited(reply: Any) -> None:
    assert reply.status == 429, reply
    assert set(reply.body) == {"reqId", "statusCode", "message", "error"}
    assert reply.body["statusCode"] == 429 and reply.body["error"] == "RateLimitExceeded"
    assert reply.body["message"].startswith("Too many failed authentication attempts")
    assert int(reply.headers["Retry-After"]) >= 1


async def test_bad_tokens_spend_the_address_budget_then_429_before_any_token_check(strict: Api) -> None:
    assert (await strict.call("GET", KEYS)).status == 200  # successes cost nothing
    statuses = [(await strict.call("GET", KEYS, token=f"guess-{i}")).status for i in range(3)]
    assert statuses == [403, 403, 403]
    _assert_rate_limited(await strict.call("GET", KEYS, token="guess-3"))
    # The admin token, from the same address, is refused too: its check never ran.
    _assert_rate_limited(await strict.call("GET", KEYS, token=ADMIN))
    # Even a request without a header: the address is refused before anything else is looked at.
    _assert_rate_limited(await strict.call("GET", KEYS, token=None))


async def test_missing_tokens_do_not_spend_the_budget(strict: Api) -> None:
    for _ in range(5):
        assert (await strict.call("GET", KEYS, token=None)).status == 401
    assert (await strict.call("GET", KEYS)).status == 200


async def test_failed_logins_spend_the_budget_and_are_audited_without_the_secret(
    strict: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kubekms.audit")
    ok = await strict.call("POST", LOGIN, {"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET}, token=None)
    assert ok.status == 200
    wrong = "wrong-secret-0123456789"
    for client_id in (ROBOT_ID, "nobody", ROBOT_ID):
        reply = await strict.call("POST", LOGIN, {"clientId": client_id, "clientSecret": wrong}, token=None)
        assert (reply.status, reply.body["message"]) == (401, "Invalid credentials")
    # The right secret is refused now: the budget is checked before the secret is.
    right = {"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET}
    _assert_rate_limited(await strict.call("POST", LOGIN, right, token=None))
    # So are bearer tokens: one budget per address for every kind of credential.
    _assert_rate_limited(await strict.call("GET", KEYS, token=ADMIN))

    audit = [r for r in caplog.records if r.name == "kubekms.audit"]
    events = [r for r in audit if r.type == "login-identity-universal-auth"]
    assert [(e.outcome, e.status, e.error) for e in events] == [
        ("success", 200, None),
        ("denied", 401, "UnauthorizedError"),
        ("denied", 401, "UnauthorizedError"),
        ("denied", 401, "UnauthorizedError"),
        ("denied", 429, "RateLimitExceeded"),
    ]
    assert [e.metadata["clientId"] for e in events] == [ROBOT_ID, ROBOT_ID, "nobody", ROBOT_ID, None]
    assert all(e.metadata["clientAddress"] == "127.0.0.1" for e in events)
    logged = "\n".join(json.dumps(vars(r), default=str) for r in caplog.records)
    assert wrong not in logged and ROBOT_SECRET not in logged


async def test_budget_can_be_turned_off(aiohttp_client: Any, api_settings: Any) -> None:
    from kms_api.app import create_app

    settings = dataclasses.replace(api_settings, auth_fail_rate=0.0)
    api = Api(await aiohttp_client(create_app(settings)))
    statuses = {(await api.call("GET", KEYS, token=f"guess-{i}")).status for i in range(30)}
    assert statuses == {403}
