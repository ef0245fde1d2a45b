"""Authentication and roles over HTTP: spec §7 cases 31-33, the three roles, universal-auth login."""

from __future__ import annotations

import asyncio

from fixtures.api import (
    BLINK_ID,
    BLINK_SECRET,
    OPERATOR,
    OTHER,
    PROJECT_ADMIN,
    ROBOT_ID,
    ROBOT_SECRET,
    VIEWER,
    Api,
    P,
    b64,
)

KEYS = "/api/v1/kms/keys"
LOGIN = "/api/v1/auth/universal-auth/login"
MALFORMED = (
    "The provided access token is malformed. Please use a valid token or generate a new one and try again."
)


async def test_case_31_missing_and_bad_tokens(api: Api) -> None:
    reply = await api.call("GET", f"{KEYS}?projectId={P}", token=None)
    assert reply.status == 401
    assert {k: reply.body[k] for k in ("statusCode", "message", "error")} == {
        "statusCode": 401,
        "message": "Token missing",
        "error": "UnauthorizedError",
    }
    reply = await api.call("GET", f"{KEYS}?projectId={P}", token="garbage")
    assert (reply.status, reply.body["error"], reply.body["message"]) == (403, "TokenError", MALFORMED)
    reply = await api.call("GET", f"{KEYS}?projectId={P}", token=None, headers={"Authorization": "Basic abc"})
    assert (reply.status, reply.body["error"]) == (403, "TokenError")
    # auth comes before validation, as in Infisical
    assert (await api.call("POST", api.key("not-a-uuid", "encrypt"), {}, token=None)).status == 401


async def test_case_32_viewer(api: Api) -> None:
    key = await api.create("k")
    assert (await api.call("GET", f"{KEYS}?projectId={P}", token=VIEWER)).status == 200
    assert (await api.call("GET", api.key(key["id"]), token=VIEWER)).status == 200
    reply = await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": "YQ"}, token=VIEWER)
    assert reply.status == 403
    assert (reply.body["error"], reply.body["message"]) == (
        "PermissionDenied",
        "You are not allowed to encrypt on cmek",
    )
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "v"}, token=VIEWER)
    assert (reply.status, reply.body["message"]) == (403, "You are not allowed to create on cmek")


async def test_cryptographic_operator(api: Api) -> None:
    key = await api.create("k")
    mac = await api.create("m", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_512")
    reply = await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"hi")}, token=OPERATOR)
    assert reply.status == 200
    ct = reply.body["ciphertext"]
    assert (
        await api.call("POST", api.key(key["id"], "decrypt"), {"ciphertext": ct}, token=OPERATOR)
    ).status == 200
    reply = await api.call("POST", api.key(mac["id"], "generate-mac"), {"data": "YQ"}, token=OPERATOR)
    assert reply.status == 200 and reply.body["macAlgorithm"] == "HMAC_SHA_512"
    for method, path, body, action in [
        ("GET", f"{KEYS}?projectId={P}", None, "read"),
        ("GET", api.key(key["id"]), None, "read"),
        ("POST", api.key(key["id"], "rotate"), None, "rotate"),
        ("PATCH", api.key(key["id"]), {"isDisabled": True}, "edit"),
        ("DELETE", api.key(key["id"]), None, "delete"),
        ("GET", api.key(key["id"], "private-key"), None, "export-private-key"),
    ]:
        reply = await api.call(method, path, body, token=OPERATOR)
        assert (reply.status, reply.body["message"]) == (403, f"You are not allowed to {action} on cmek"), (
            path
        )


async def test_project_admin_role(api: Api) -> None:
    key = await api.create("k", token=PROJECT_ADMIN)
    assert (await api.call("POST", api.key(key["id"], "rotate"), token=PROJECT_ADMIN)).status == 200
    assert (await api.call("DELETE", api.key(key["id"]), token=PROJECT_ADMIN)).status == 200
    reply = await api.call("POST", KEYS, {"projectId": "another", "name": "x"}, token=PROJECT_ADMIN)
    assert reply.status == 403


async def test_case_33_not_a_member(api: Api) -> None:
    key = await api.create("k")
    reply = await api.call("GET", api.key(key["id"]), token=OTHER)
    assert reply.status == 403
    assert reply.body["error"] == "You are not member of this project"
    assert reply.body["message"] == "You are not allowed to access this resource"
    # Authorise before revealing (unlike spec §2.7): a non-member gets the same 403 for a
    # disabled key as for an enabled one, never "Key is disabled".
    enabled = await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": "YQ"}, token=OTHER)
    await api.call("PATCH", api.key(key["id"]), {"isDisabled": True})
    reply = await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": "YQ"}, token=OTHER)
    assert reply.status == 403
    assert {k: v for k, v in reply.body.items() if k != "reqId"} == {
        k: v for k, v in enabled.body.items() if k != "reqId"
    }


async def test_universal_auth_login_and_use(api: Api) -> None:
    key = await api.create("k")
    reply = await api.call("POST", LOGIN, {"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET}, token=None)
    assert reply.status == 200
    assert (reply.body["expiresIn"], reply.body["accessTokenMaxTTL"], reply.body["tokenType"]) == (
        60,
        60,
        "Bearer",
    )
    token = reply.body["accessToken"]
    assert (
        await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": "YQ"}, token=token)
    ).status == 200
    reply = await api.call("GET", api.key(key["id"]), token=token)
    assert (reply.status, reply.body["error"]) == (403, "PermissionDenied")
    bad = await api.call("POST", LOGIN, {"clientId": ROBOT_ID, "clientSecret": "wrong"}, token=None)
    assert (bad.status, bad.body["message"]) == (401, "Invalid credentials")
    unknown = await api.call("POST", LOGIN, {"clientId": "nobody", "clientSecret": "x"}, token=None)
    assert unknown.body == {**bad.body, "reqId": unknown.body["reqId"]}
    assert (await api.call("POST", LOGIN, {"clientId": ROBOT_ID}, token=None)).status == 422


async def test_universal_auth_token_expires(api: Api) -> None:
    key = await api.create("k")
    reply = await api.call("POST", LOGIN, {"clientId": BLINK_ID, "clientSecret": BLINK_SECRET}, token=None)
    token = reply.body["accessToken"]
    assert (
        await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": "YQ"}, token=token)
    ).status == 200
    await asyncio.sleep(2.1)
    reply = await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": "YQ"}, token=token)
    assert (reply.status, reply.body["error"]) == (403, "TokenError")
    assert reply.body["message"] == "Your token has expired. Please re-authenticate."
