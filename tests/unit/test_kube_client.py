"""The one Kubernetes client: error classes as both processes rely on them, a rotated token picked
up after a 401, and the reflector's transforms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kms_kube import layout
from kms_kube.client import ApiError, Conflict, Gone, KubeClient, NotFound, status_error
from kms_kube.config import KubeConfig
from kms_kube.reflector import strip_managed_fields
from kube import SECRETS, Cluster


def status(code: int, reason: str, causes: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "code": code, "reason": reason, "message": "m"}
    if causes is not None:
        body["details"] = {"causes": causes}
    return body


def test_a_failed_json_patch_test_is_a_conflict_other_422s_are_permanent() -> None:
    failed_test = [{"reason": "UnexpectedServerResponse",
                    "message": "testing value /metadata/resourceVersion failed: test failed"}]
    assert isinstance(status_error(status(422, "Invalid", failed_test), 422, "PATCH"), Conflict)
    invalid = [{"reason": "FieldValueInvalid", "message": "x"}]
    cel = status_error(status(422, "Invalid", invalid), 422, "PATCH")
    assert type(cel) is ApiError and cel.permanent and cel.causes == ("FieldValueInvalid",)
    bad_path = [{"reason": "UnexpectedServerResponse", "message": "add operation does not apply"}]
    assert status_error(status(422, "Invalid", bad_path), 422, "PATCH").permanent
    assert isinstance(status_error(status(409, "Conflict"), 409), Conflict)
    assert isinstance(status_error(status(410, "Expired"), 410), Gone)
    assert isinstance(status_error(status(404, "NotFound"), 404), NotFound)
    assert status_error(status(403, "Forbidden"), 403).permanent
    for code in (429, 500, 503):
        assert status_error(status(code, "x"), code).retriable
        assert not status_error(status(code, "x"), code).permanent


async def test_the_emulator_answers_a_failed_test_like_kube_apiserver() -> None:
    with Cluster() as cluster:
        cluster.create(SECRETS, {"metadata": {"name": "s"}, "data": {}}, namespace="default")
        client = KubeClient(KubeConfig(server=cluster.url))
        try:
            path = layout.secrets_path("default", "s")
            stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                     {"op": "add", "path": "/data/x", "value": "eA=="}]
            with pytest.raises(Conflict) as info:
                await client.json_patch(path, stale)
            assert info.value.status == 422 and info.value.causes == ("UnexpectedServerResponse",)
            with pytest.raises(ApiError) as bad:
                await client.json_patch(path, [{"op": "add", "path": "/nope/deeper", "value": 1}])
            assert bad.value.permanent
        finally:
            await client.close()


async def test_a_401_rereads_a_rotated_token_file_once(tmp_path: Path) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer new":
            return web.json_response(status(401, "Unauthorized"), status=401)
        return web.json_response({"kind": "Secret", "metadata": {"name": "s"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/secrets/s", handler)
    token = tmp_path / "token"
    token.write_text("old\n")
    async with TestServer(app, host="127.0.0.1") as server:
        cfg = KubeConfig(server=str(server.make_url("")).rstrip("/"), token_file=str(token))
        client = KubeClient(cfg)
        try:
            with pytest.raises(ApiError) as info:
                await client.get("/api/v1/namespaces/default/secrets/s")  # old token, file unchanged
            assert info.value.status == 401 and seen == ["Bearer old", "Bearer old"]
            token.write_text("new\n")  # the kubelet rotated the projected token
            body = await client.get("/api/v1/namespaces/default/secrets/s")
            assert body["metadata"]["name"] == "s" and seen[-2:] == ["Bearer old", "Bearer new"]
        finally:
            await client.close()


def test_cached_objects_lose_managed_fields_and_kopf_bookkeeping() -> None:
    obj = {"metadata": {"name": "k", "managedFields": [{"manager": "kubectl"}], "annotations": {
        "operator.kubekms.io/last-handled-configuration": "{...}", "kopf.zalando.org/touch": "x",
        "kubekms.io/rotate": "2"}}}
    slim = layout.slim_kmskey(strip_managed_fields(obj))
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["annotations"] == {"kubekms.io/rotate": "2"}
