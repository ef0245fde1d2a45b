"""The warm request path does no avoidable work: one key-record read per operation (MAC routes
included), no sealer (PKCS#11) call for a warm key, and metrics labelled without extra lookups.

In-process app on a real data dir (root key or a real SoftHSM token); the store is observed by
wrapping the live store's `get` with a counter, the sealer through its Prometheus counter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from fixtures.api import ADMIN, OPERATOR, ROOT_KEY, TOKENS_YAML, Api, b64
from fixtures.softhsm import HsmConfig
from kms_api.app import create_app
from kms_api.appstate import service_of
from kms_api.settings import Settings


async def _client(aiohttp_client: Any, tmp_path: Path, env: dict[str, str]) -> Any:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS_YAML)
    settings = Settings(data_dir=tmp_path / "data", tokens_file=tokens, admin_token=ADMIN, env=env)
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    yield await _client(aiohttp_client, tmp_path, {"ROOT_ENCRYPTION_KEY": ROOT_KEY})


def _count_store_reads(client: Any) -> list[str]:
    store = service_of(client.app).store
    reads: list[str] = []
    real_get = store.get

    async def get(key_id: str) -> Any:
        reads.append(key_id)
        return await real_get(key_id)

    store.get = get
    return reads


async def test_mac_routes_read_the_key_record_once_and_name_the_algorithm(client: Any) -> None:
    api = Api(client)
    key = await api.create("mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256")
    data = {"data": b64(b"message")}
    await api.call("POST", api.key(key["id"], "generate-mac"), data, token=OPERATOR)  # warm
    reads = _count_store_reads(client)

    mac = await api.call("POST", api.key(key["id"], "generate-mac"), data, token=OPERATOR)
    assert mac.status == 200 and mac.body["macAlgorithm"] == "HMAC_SHA_256"
    verify = await api.call(
        "POST", api.key(key["id"], "verify-mac"), {**data, "mac": mac.body["mac"]}, token=OPERATOR
    )
    assert verify.body == {"macValid": True, "keyId": key["id"], "macAlgorithm": "HMAC_SHA_256"}
    assert reads == [key["id"], key["id"]]  # one read per request, not two

    labels = {"operation": "verifyMacWithKmsKey", "status_class": "2xx", "algorithm": "HMAC_SHA_256"}
    assert (REGISTRY.get_sample_value("kubekms_requests_total", labels) or 0) >= 1


async def test_a_failed_mac_lookup_is_still_one_read(client: Any) -> None:
    api = Api(client)
    key = await api.create("aes-not-mac")
    reads = _count_store_reads(client)
    reply = await api.call("POST", api.key(key["id"], "generate-mac"), {"data": "YQ"}, token=OPERATOR)
    assert reply.status == 400 and reads == [key["id"]]


async def test_warm_hsm_requests_make_no_pkcs11_call(
    aiohttp_client: Any, tmp_path: Path, softhsm: HsmConfig
) -> None:
    env = {**softhsm.env, "HSM_CREATE_KEY": "true"}
    client = await _client(aiohttp_client, tmp_path, env)
    api = Api(client)
    sealer = service_of(client.app).sealer
    assert sealer.backend == "pkcs11"
    calls: list[str] = []
    for name in ("seal", "unseal"):
        real = getattr(sealer, name)

        def spy(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append(_name)
            return _real(*args)

        setattr(sealer, name, spy)

    key = await api.create("hsm-warm")
    path = api.key(key["id"], "encrypt")
    assert (await api.call("POST", path, {"plaintext": "YQ"})).status == 200
    assert "unseal" in calls  # the first use reached the token
    calls.clear()
    for _ in range(20):
        reply = await api.call("POST", path, {"plaintext": b64(b"warm")})
        assert reply.status == 200
    assert calls == []
