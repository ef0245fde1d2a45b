"""Tenants are enemies, for the lifecycle routes (embedded mode): the admin of project A
(`PROJECT_ADMIN`, admin in "proj") attacks project B's keys (`OTHER`, admin in "elsewhere") through
the versions route, the policy fields of PATCH, and the deleted-keys list, restore and purge —
and the other way round. Every attack is refused, and B's key and its recovery stay intact.
The authorisation under test is the service's (kms_core.service: RESTORE asked in the deleted
key's own project), so it holds for the Kubernetes store too, whose RBAC verb is `restore`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fixtures.api import OTHER, PROJECT_ADMIN, Api, P, b64, unb64
from fixtures.lifecycle import WindowedApi, serve_with_window

DELETED = "/api/v1/kms/deleted-keys"
B = "elsewhere"  # the only project of OTHER


@pytest.fixture
async def api(aiohttp_client: Any, api_settings: Any) -> AsyncIterator[Api]:
    served: WindowedApi
    async with serve_with_window(aiohttp_client, api_settings) as served:
        yield served.api


async def _deleted_key_of_b(api: Api) -> tuple[str, str]:
    """A key of project B with one ciphertext, then deleted by B: (key id, ciphertext)."""
    key = await api.create("b-secret", project=B, token=OTHER)
    data = {"plaintext": b64(b"b's data")}
    reply = await api.call("POST", api.key(key["id"], "encrypt"), data, token=OTHER)
    assert reply.status == 200, reply
    assert (await api.call("DELETE", api.key(key["id"]), token=OTHER)).status == 200
    return key["id"], reply.body["ciphertext"]


async def test_a_cannot_list_restore_or_purge_bs_deleted_keys(api: Api) -> None:
    key_id, ciphertext = await _deleted_key_of_b(api)
    attacks = [
        ("GET", f"{DELETED}?projectId={B}", None),
        ("POST", f"{DELETED}/{key_id}/restore", {}),
        ("POST", f"{DELETED}/{key_id}/restore", {"name": "stolen"}),
        ("DELETE", f"{DELETED}/{key_id}", None),
    ]
    for method, path, body in attacks:
        reply = await api.call(method, path, body, token=PROJECT_ADMIN)
        assert reply.status == 403, (method, path, reply)
        assert key_id not in str(reply.body) and "b-secret" not in str(reply.body)
    # A's own list never shows B's keys.
    own = await api.call("GET", f"{DELETED}?projectId={P}", token=PROJECT_ADMIN)
    assert own.status == 200 and own.body["keys"] == []
    # B's key is still restorable by B, under its name, and decrypts its data.
    listing = await api.call("GET", f"{DELETED}?projectId={B}", token=OTHER)
    assert [k["id"] for k in listing.body["keys"]] == [key_id]
    restored = await api.call("POST", f"{DELETED}/{key_id}/restore", {}, token=OTHER)
    assert (restored.status, restored.body["key"]["name"]) == (200, "b-secret")
    plain = await api.call("POST", api.key(key_id, "decrypt"), {"ciphertext": ciphertext}, token=OTHER)
    assert unb64(plain.body["plaintext"]) == b"b's data"


async def test_b_cannot_touch_as_deleted_keys_either(api: Api) -> None:
    key = await api.create("a-secret", token=PROJECT_ADMIN)
    assert (await api.call("DELETE", api.key(key["id"]), token=PROJECT_ADMIN)).status == 200
    for method, path, body in (
        ("GET", f"{DELETED}?projectId={P}", None),
        ("POST", f"{DELETED}/{key['id']}/restore", {}),
        ("DELETE", f"{DELETED}/{key['id']}", None),
    ):
        assert (await api.call(method, path, body, token=OTHER)).status == 403, (method, path)
    listing = await api.call("GET", f"{DELETED}?projectId={P}", token=PROJECT_ADMIN)
    assert [k["id"] for k in listing.body["keys"]] == [key["id"]]


async def test_a_cannot_read_versions_or_change_the_policy_of_bs_key(api: Api) -> None:
    key = await api.create("b-live", project=B, token=OTHER)
    before = (await api.call("GET", api.key(key["id"], "versions"), token=OTHER)).body
    assert (await api.call("GET", api.key(key["id"], "versions"), token=PROJECT_ADMIN)).status == 403
    for fields in ({"rotationPeriod": "1h"}, {"minDecryptionVersion": 1}, {"minEncryptionVersion": 1},
                   {"minDecryptionVersion": 1, "minEncryptionVersion": 1, "minAvailableVersion": 1}):
        reply = await api.call("PATCH", api.key(key["id"]), fields, token=PROJECT_ADMIN)
        assert reply.status == 403, (fields, reply)
    # A refused before validation of the bounds: the answer says nothing about B's versions.
    wild = await api.call("PATCH", api.key(key["id"]), {"minDecryptionVersion": 99}, token=PROJECT_ADMIN)
    assert wild.status == 403 and "latest key version" not in str(wild.body)
    assert (await api.call("GET", api.key(key["id"], "versions"), token=OTHER)).body == before
