"""The SoftHSM token disappearing under a running `kubekms-api` (its token directory moved away).

Operations that need the HSM (unsealing a cold key, creating or rotating) answer 503 with
Retry-After; keys already unsealed in memory keep working; when the token comes back the sealer
reconnects (with backoff, under the PKCS#11 lock) and everything works again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from fixtures.api import Api, b64, unb64
from fixtures.hardening import start_hardened
from fixtures.softhsm import DEFAULT_KEY_LABEL, SOFTHSM_LIB, init_token, write_conf


async def test_token_loss_is_503_for_cold_keys_warm_keys_work_and_it_recovers(tmp_path: Path) -> None:
    conf = write_conf(tmp_path)
    pin = init_token(conf, "faulty")
    env = {
        "HSM_LIB_PATH": SOFTHSM_LIB, "HSM_TOKEN_LABEL": "faulty", "HSM_PIN": pin,
        "HSM_KEY_LABEL": DEFAULT_KEY_LABEL, "HSM_CREATE_KEY": "true", "SOFTHSM2_CONF": str(conf),
        "ROOT_ENCRYPTION_KEY": "",
    }  # fmt: skip
    handle = start_hardened(tmp_path, env=env)
    token_dir = next((tmp_path / "tokens").iterdir())
    parked = tmp_path / "parked-token"
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, handle.url)
            warm = await api.create("warm")
            cold = await api.create("cold")
            ct = (await api.call("POST", api.key(warm["id"], "encrypt"), {"plaintext": b64(b"warm")})).body

            token_dir.rename(parked)  # the token is gone
            try:
                refused = await api.call("POST", api.key(cold["id"], "encrypt"), {"plaintext": "YQ=="})
                assert refused.status == 503, refused
                assert refused.body["error"] == "ServiceUnavailable"
                assert refused.body["message"].startswith("HSM unavailable")
                assert int(refused.headers["Retry-After"]) >= 1
                assert (
                    await api.call("POST", "/api/v1/kms/keys", {"projectId": "proj", "name": "new"})
                ).status == 503
                assert (await api.call("GET", "/readyz", token=None)).status == 503
                # The warm key never needs the HSM.
                reply = await api.call("POST", api.key(warm["id"], "decrypt"), ct)
                assert reply.status == 200 and unb64(reply.body["plaintext"]) == b"warm"
                again = await api.call("POST", api.key(warm["id"], "encrypt"), {"plaintext": "YQ=="})
                assert again.status == 200
            finally:
                parked.rename(token_dir)

            deadline = time.monotonic() + 20
            while True:
                reply = await api.call("POST", api.key(cold["id"], "encrypt"), {"plaintext": b64(b"cold")})
                if reply.status == 200 or time.monotonic() > deadline:
                    break
                assert reply.status == 503, reply
                await asyncio.sleep(0.2)
            assert reply.status == 200, reply
            assert (await api.create("after"))["name"] == "after"
            assert (await api.call("GET", "/readyz", token=None)).status == 200
    finally:
        assert handle.stop() == 0, handle.logs()
    logs = handle.logs()
    assert "HSM session lost" in logs and "HSM session re-established" in logs
    assert pin not in logs and "Traceback" not in logs
