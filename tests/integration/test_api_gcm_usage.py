"""AES-GCM usage counting through the real API: encryptions over HTTP reach the key version's
count, and crossing the threshold logs one warning naming the key (here with a threshold of 8)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from fixtures.api import Api, b64
from kms_core.gcmusage import GCM_USAGE


async def test_encryptions_over_http_are_counted_and_warned_about(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A small threshold for this test (counters take the stride when they are made).
    monkeypatch.setattr(GCM_USAGE, "warn_at", 8)
    monkeypatch.setattr(GCM_USAGE, "stride", 4)
    caplog.set_level(logging.WARNING, logger="kubekms.keys")
    key = await api.create("counted")
    mac = await api.create("mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256")
    for _ in range(7):
        assert (await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"x")})).status == 200
        await api.call("POST", api.key(mac["id"], "generate-mac"), {"data": b64(b"x")})
    assert GCM_USAGE.count(key["id"], 1) == 7 and GCM_USAGE.count(mac["id"], 1) == 0
    assert not [r for r in caplog.records if r.name == "kubekms.keys"]

    assert (await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"x")})).status == 200
    [warning] = [r for r in caplog.records if r.name == "kubekms.keys"]
    assert key["id"] in warning.getMessage() and "rotate" in warning.getMessage()
    assert (REGISTRY.get_sample_value("kubekms_aes_gcm_key_versions_over_threshold") or 0) >= 1

    # Rotation is the remedy: version 2 starts from zero.
    assert (await api.call("POST", api.key(key["id"], "rotate"))).status == 200
    assert (await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"x")})).status == 200
    assert (GCM_USAGE.count(key["id"], 1), GCM_USAGE.count(key["id"], 2)) == (8, 1)
    assert (await api.call("DELETE", api.key(key["id"]))).status == 200
    assert GCM_USAGE.count(key["id"], 2) == 0
