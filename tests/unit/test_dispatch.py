"""The `/keys/{keyId}/{operation}` fast dispatcher resolves exactly as aiohttp's own router would.

Two applications with the same route table, one with `KeyOperations` registered first and one
without, must give the same route, match dict, or 404/405 (with the same allowed methods) for
every method and path, including the awkward ones: the `key-name/{keyName}` route that shares
the shape, percent-encoded and braced segments, trailing slashes, unknown operations.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from kms_api.http.dispatch import KeyOperations
from kms_api.infisical.routes import ROUTES, add_routes
from kms_api.settings import Settings

P = "/api/v1/kms/keys"
KEY = "3f2b9c1e-8a4d-4c5b-9e6f-0a1b2c3d4e5f"
METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT", "HEAD")
SEGMENTS = (KEY, KEY.upper(), "key-name", "bulk-import", "not-a-uuid", "%7Bx%7D", "a%2Fb", "%61bc", "{x}", "")
ROUTE_OPERATIONS = tuple(r.path.rsplit("/", 1)[1] for r in ROUTES if r.path.startswith(P + "/{keyId}/"))
OPERATIONS = (*ROUTE_OPERATIONS, "unknown", "ENCRYPT", "encrypt/extra", "")


def _app(fast: bool) -> web.Application:
    app = web.Application()
    add_routes(app, fast_dispatch=fast)
    return app


def _paths() -> list[str]:
    paths = [P, P + "/", f"{P}/{KEY}", f"{P}/key-name/encrypt", f"{P}//encrypt", "/healthz", "/nope"]
    paths += [f"{P}/{seg}/{op}" for seg, op in itertools.product(SEGMENTS, OPERATIONS)]
    paths += [f"{P}/{KEY}/{op}/" for op in OPERATIONS[:3]]
    return paths


def _outcome(info: Any) -> tuple[Any, ...]:
    if info.http_exception is not None:
        exc = info.http_exception
        return ("error", exc.status, tuple(sorted(getattr(exc, "allowed_methods", ()))))
    return ("route", info.route.name, info.route.resource.canonical, dict(info))


@pytest.fixture(scope="module")
def apps() -> tuple[web.Application, web.Application]:
    return _app(True), _app(False)


async def test_fast_dispatch_resolves_like_aiohttp(apps: tuple[web.Application, web.Application]) -> None:
    fast, plain = apps
    claimed = 0
    for method, path in itertools.product(METHODS, _paths()):
        got = _outcome(await fast.router.resolve(make_mocked_request(method, path, app=fast)))
        want = _outcome(await plain.router.resolve(make_mocked_request(method, path, app=plain)))
        assert got == want, (method, path)
        claimed += got[0] == "route" and got[1] != "getKmsKeyByName"
    assert claimed > 20  # the comparison covered real matches, not only errors


async def test_the_dispatcher_claims_the_crypto_family(apps: tuple[web.Application, web.Application]) -> None:
    fast, _ = apps
    operations = next(r for r in fast.router.resources() if isinstance(r, KeyOperations))
    assert set(operations.operations) == set(ROUTE_OPERATIONS) and len(ROUTE_OPERATIONS) >= 10
    request = make_mocked_request("POST", f"{P}/{KEY}/verify-mac", app=fast)
    info, _ = await operations.resolve(request)
    assert info is not None and info.route.name == "verifyMacWithKmsKey" and info["keyId"] == KEY
    for path in (f"{P}/key-name/public-key", f"{P}/%61bc/encrypt", f"{P}/{KEY}/nope"):
        miss, _ = await operations.resolve(make_mocked_request("GET", path, app=fast))
        assert miss is None, path


async def test_served_app_still_answers_every_shape(aiohttp_client: Any, tmp_path: Any) -> None:
    # The real app factory registers the dispatcher; unknown operations keep the JSON 404 shape.
    from kms_api.app import create_app

    settings = Settings(data_dir=tmp_path, admin_token="t" * 40, rate_limit_rps=0)
    client = await aiohttp_client(create_app(settings))
    resp = await client.post(f"{P}/{KEY}/nope", headers={"Authorization": "Bearer " + "t" * 40})
    body = await resp.json()
    assert resp.status == 404 and body["message"] == f"Route POST:{P}/{KEY}/nope not found"
    resp = await client.get(f"{P}/{KEY}/encrypt", headers={"Authorization": "Bearer " + "t" * 40})
    assert resp.status == 404  # Fastify answers a wrong method with 404 too
