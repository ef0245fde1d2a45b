"""HTTP-level behaviour: error shape, request ids, body limits, malformed bodies, unknown routes,
health, readiness, OpenAPI. No client mistake may produce a 500."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from fixtures.api import ADMIN, VIEWER, Api, P, b64

KEYS = "/api/v1/kms/keys"


async def raw(
    api: Api, method: str, path: str, data: bytes, content_type: str | None = "application/json"
) -> Any:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    if content_type:
        headers["Content-Type"] = content_type
    return await api.call(method, path, token=None, data=data, headers=headers)


async def test_malformed_empty_and_mistyped_bodies_are_422(api: Api) -> None:
    key = await api.create("k")
    path = api.key(key["id"], "encrypt")
    for data, ctype in [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"   ", "application/json"),
        (b'{"plaintext":"YQ"}', "text/plain"),
        (b'{"plaintext":"YQ"}', None),
        (b"[1,2]", "application/json"),
        (b'"YQ"', "application/json"),
        (b"null", "application/json"),
    ]:
        reply = await raw(api, "POST", path, data, ctype)
        assert reply.status == 422, (data, ctype, reply)
        assert reply.body["error"] == "ValidationFailure" and isinstance(reply.body["message"], list)
    ok = await raw(api, "POST", path, b'{"plaintext":"YQ"}', "application/json; charset=utf-8")
    assert ok.status == 200


async def test_body_limits_are_413(api: Api) -> None:
    key = await api.create("k")
    big = b'{"plaintext":"' + b"A" * (2 * 1024 * 1024) + b'"}'
    reply = await raw(api, "POST", api.key(key["id"], "encrypt"), big)
    assert (reply.status, reply.body["error"]) == (413, "PayloadTooLarge")
    assert reply.body["reqId"] == reply.headers["X-Request-Id"]
    # 1.5 MiB is fine on a crypto route but over the 1 MiB default elsewhere
    medium = b64(bytes(1_000_000))
    assert (await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": medium})).status == 200
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "x", "description": medium})
    assert reply.status == 413


async def test_every_response_has_a_request_id(api: Api) -> None:
    ok = await api.call("GET", f"{KEYS}?projectId={P}")
    first = ok.headers["X-Request-Id"]
    assert first.startswith("req-")
    again = await api.call("GET", f"{KEYS}?projectId={P}")
    assert again.headers["X-Request-Id"] != first
    err = await api.call("GET", f"{KEYS}?projectId={P}", token=None)
    assert set(err.body) == {"reqId", "statusCode", "message", "error"}
    assert err.body["reqId"] == err.headers["X-Request-Id"]


async def test_unknown_routes_are_json_404(api: Api) -> None:
    reply = await api.call("GET", "/api/v1/nothing")
    assert reply.status == 404 and reply.body["message"] == "Route GET:/api/v1/nothing not found"
    reply = await api.call("PUT", KEYS)
    assert reply.status == 404 and reply.body["reqId"]


async def test_health_readiness_openapi(api: Api) -> None:
    assert (await api.call("GET", "/healthz", token=None)).body == {"status": "ok"}
    assert (await api.call("GET", "/readyz", token=None)).body == {"status": "ok"}
    doc = (await api.call("GET", "/openapi.json", token=None)).body
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/api/v1/kms/keys/{keyId}/derive-shared-secret"]
    assert doc["paths"]["/api/v1/auth/universal-auth/login"]["post"]["operationId"] == "universalAuthLogin"
    assert len([op for p in doc["paths"].values() for op in p]) == 27  # 23 + 4 lifecycle extensions
    assert doc["paths"]["/api/v1/kms/keys/{keyId}/versions"]["get"]["operationId"] == "listKmsKeyVersions"
    assert set(doc["paths"]["/api/v1/kms/deleted-keys/{keyId}"]) == {"delete"}
    update = doc["components"]["schemas"]["UpdateKmsKeyBody"]["properties"]
    policy = {"rotationPeriod", "minDecryptionVersion", "minEncryptionVersion", "minAvailableVersion"}
    assert policy <= set(update)


async def test_responses_never_contain_material(api: Api) -> None:
    key = await api.create("secretive", isExportable=False)
    reply = await api.call("GET", api.key(key["id"]))
    assert set(reply.body["key"]) >= {"id", "algorithm"}
    assert not any("material" in k.lower() or "private" in k.lower() for k in reply.body["key"])


# -- trailing slashes (Fastify's ignoreTrailingSlash) ---------------------------------------------


async def test_one_trailing_slash_is_ignored_on_every_kind_of_route(api: Api) -> None:
    created = await api.call("POST", f"{KEYS}/", {"projectId": P, "name": "slash"})
    assert created.status == 200, created
    key_id = created.body["key"]["id"]
    listed = await api.call("GET", f"{KEYS}/?projectId={P}")
    assert listed.status == 200 and [k["id"] for k in listed.body["keys"]] == [key_id]
    assert (await api.call("GET", f"{KEYS}/{key_id}/")).body["key"]["name"] == "slash"
    by_name = await api.call("GET", f"{KEYS}/key-name/slash/?projectId={P}")
    assert by_name.body["key"]["id"] == key_id
    sealed = await api.call("POST", f"{KEYS}/{key_id}/encrypt/", {"plaintext": b64(b"m")})
    assert sealed.status == 200
    opened = await api.call("POST", f"{KEYS}/{key_id}/decrypt/", {"ciphertext": sealed.body["ciphertext"]})
    assert opened.body == {"plaintext": b64(b"m")}
    assert (await api.call("GET", "/healthz/", token=None)).body == {"status": "ok"}
    patched = await api.call("PATCH", f"{KEYS}/{key_id}/", {"description": "d"})
    assert patched.body["key"]["description"] == "d"
    assert (await api.call("DELETE", f"{KEYS}/{key_id}/")).status == 200


async def test_a_trailing_slash_is_checked_like_the_route_itself(api: Api) -> None:
    key = await api.create("guarded")
    encrypt = f"{KEYS}/{key['id']}/encrypt/"
    missing = await api.call("POST", encrypt, {"plaintext": "YQ"}, token=None)
    assert (missing.status, missing.body["message"]) == (401, "Token missing")
    viewer = await api.call("POST", encrypt, {"plaintext": "YQ"}, token=VIEWER)
    assert viewer.status == 403 and viewer.body["error"] == "PermissionDenied"
    invalid = await api.call("POST", encrypt, {"plaintext": "!"})
    assert invalid.status == 422 and invalid.body["message"][0]["path"] == ["plaintext"]
    bad_id = await api.call("GET", f"{KEYS}/not-a-uuid/")
    assert bad_id.status == 422


async def test_only_one_trailing_slash_and_known_paths(api: Api) -> None:
    for path in (f"{KEYS}//", "/api/v1/nothing/", "/healthz//"):
        reply = await api.call("GET", path)
        assert reply.status == 404, path
        assert reply.body["message"] == f"Route GET:{path} not found"
    reply = await api.call("PUT", f"{KEYS}/")  # a known path with another method: still Fastify's 404
    assert (reply.status, reply.body["message"]) == (404, f"Route PUT:{KEYS}/ not found")


async def test_trailing_slash_requests_are_named_audited_and_limited_as_the_route(
    aiohttp_client: Any, api_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from kms_api.app import create_app

    # Three requests of burst: the slash and slash-less forms draw from one identity's bucket.
    settings = replace(api_settings, rate_limit_rps=0.001, rate_limit_burst=3)
    api = Api(await aiohttp_client(create_app(settings)))
    labels = {"operation": "listKmsKeys", "status_class": "2xx", "algorithm": ""}
    before = REGISTRY.get_sample_value("kubekms_requests_total", labels) or 0
    caplog.set_level(logging.INFO, logger="kubekms.audit")
    assert (await api.call("GET", f"{KEYS}/?projectId={P}")).status == 200
    assert (await api.call("GET", f"{KEYS}?projectId={P}")).status == 200
    assert (REGISTRY.get_sample_value("kubekms_requests_total", labels) or 0) == before + 2
    routes = [getattr(r, "route", None) for r in caplog.records if r.name == "kubekms.audit"]
    assert routes == [KEYS, KEYS]  # the canonical route, not the slashed spelling
    assert (await api.call("GET", f"{KEYS}/?projectId={P}")).status == 200
    limited = await api.call("GET", f"{KEYS}/?projectId={P}")
    assert limited.status == 429 and limited.body["error"] == "RateLimitExceeded"


# -- CORS (opt-in, --cors-origins) ---------------------------------------------------------------

APP_ORIGIN = "https://app.example.com"


@pytest.fixture
async def cors_api(aiohttp_client: Any, api_settings: Any) -> Api:
    from kms_api.app import create_app

    settings = replace(api_settings, cors_origins=(APP_ORIGIN, "http://localhost:3000"))
    return Api(await aiohttp_client(create_app(settings)))


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_cors_preflight_is_answered_for_allowed_origins(cors_api: Api) -> None:
    key = await cors_api.create("browser")
    path = cors_api.key(key["id"], "encrypt")
    reply = await cors_api.call("OPTIONS", path, token=None, headers=preflight_headers(APP_ORIGIN))
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert reply.headers["Access-Control-Allow-Methods"] == "GET,HEAD,PUT,PATCH,POST,DELETE"
    assert reply.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert "Origin" in reply.headers.getall("Vary")
    # The real request that follows: answered with the origin, and still authenticated.
    sealed = await cors_api.call("POST", path, {"plaintext": b64(b"m")}, headers={"Origin": APP_ORIGIN})
    assert sealed.status == 200 and sealed.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert sealed.headers["Access-Control-Allow-Credentials"] == "true"
    origin = {"Origin": APP_ORIGIN}
    anonymous = await cors_api.call("POST", path, {"plaintext": "YQ"}, token=None, headers=origin)
    assert anonymous.status == 401  # CORS lets the browser read the error, not skip the check
    assert anonymous.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


async def test_cors_ignores_origins_not_on_the_list(cors_api: Api) -> None:
    evil = "https://evil.example"
    headers = preflight_headers(evil)
    reply = await cors_api.call("OPTIONS", f"{KEYS}?projectId={P}", token=None, headers=headers)
    assert (reply.status, reply.body["message"]) == (404, f"Route OPTIONS:{KEYS} not found")
    assert "Access-Control-Allow-Origin" not in reply.headers
    listed = await cors_api.call("GET", f"{KEYS}?projectId={P}", headers={"Origin": evil})
    assert listed.status == 200 and "Access-Control-Allow-Origin" not in listed.headers
    # A look-alike of an allowed origin is another origin.
    for near in ("https://app.example.com.evil.example", "http://app.example.com", "https://app.example.com:8443"):
        reply = await cors_api.call("GET", f"{KEYS}?projectId={P}", headers={"Origin": near})
        assert "Access-Control-Allow-Origin" not in reply.headers, near


async def test_cors_is_off_by_default(api: Api) -> None:
    reply = await api.call("OPTIONS", KEYS, token=None, headers=preflight_headers(APP_ORIGIN))
    assert reply.status == 404 and "Access-Control-Allow-Origin" not in reply.headers
    listed = await api.call("GET", f"{KEYS}?projectId={P}", headers={"Origin": APP_ORIGIN})
    assert listed.status == 200
    assert not any(h.lower().startswith("access-control-") for h in listed.headers)


# -- 422 issue objects as Infisical's zod v4 shapes them ------------------------------------------


async def test_422_issue_objects_match_zod_v4(api: Api) -> None:
    async def issues(method: str, path: str, body: Any = None) -> list[dict[str, Any]]:
        reply = await api.call(method, path, body)
        assert (reply.status, reply.body["statusCode"]) == (422, 422)
        assert reply.body["error"] == "ValidationFailure"
        assert set(reply.body) == {"reqId", "statusCode", "message", "error"}
        found: list[dict[str, Any]] = reply.body["message"]
        return found

    key = await api.create("wire")
    # Missing field.
    assert await issues("POST", api.key(key["id"], "encrypt"), {}) == [{
        "expected": "string", "code": "invalid_type", "path": ["plaintext"],
        "message": "Invalid input: expected string, received undefined",
    }]  # fmt: skip
    # Wrong type.
    body = {"signingAlgorithm": "ECDSA_SHA_256", "data": "YQ", "isDigest": "true"}
    assert await issues("POST", api.key(key["id"], "sign"), body) == [{
        "expected": "boolean", "code": "invalid_type", "path": ["isDigest"],
        "message": "Invalid input: expected boolean, received string",
    }]  # fmt: skip
    # Bad UUID.
    [bad_id] = await issues("GET", api.key("6f1c1b1e-8a50-0c3e-9a43-1f2b3c4d5e6f"))  # version nibble 0
    assert {k: v for k, v in bad_id.items() if k != "pattern"} == {
        "origin": "string", "code": "invalid_format", "format": "uuid", "path": ["keyId"],
        "message": "Invalid UUID",
    }  # fmt: skip
    assert bad_id["pattern"].startswith("/^([0-9a-fA-F]{8}-")
    # Enum mismatch.
    [enum] = await issues("POST", KEYS, {"projectId": P, "name": "e", "keyUsage": "encrypt"})
    assert (enum["code"], enum["path"]) == ("invalid_value", ["keyUsage"])
    assert enum["values"][0] == "encrypt-decrypt"
    assert enum["message"].startswith('Invalid option: expected one of "encrypt-decrypt"|"sign-verify"|')
    # Too long.
    assert await issues("PATCH", api.key(key["id"]), {"description": "x" * 501}) == [{
        "origin": "string", "code": "too_big", "maximum": 500, "inclusive": True, "path": ["description"],
        "message": "Too big: expected string to have <=500 characters",
    }]  # fmt: skip
    # Too few, in an array.
    [few] = await issues("POST", f"{KEYS}/bulk-export-private-keys", {"keyIds": []})
    assert (few["code"], few["origin"], few["minimum"], few["message"]) == (
        "too_small", "array", 1, "Too small: expected array to have >=1 items"
    )
