"""The crypto flow through a real `kubekms-api` process whose sealer is a SoftHSM token (PKCS#11)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from fixtures.api import Api, b64, start_api, unb64
from fixtures.softhsm import HsmConfig


async def test_hsm_sealed_keys_survive_restart(softhsm: HsmConfig, tmp_path: Path) -> None:
    env = {**softhsm.env, "HSM_CREATE_KEY": "true", "ROOT_ENCRYPTION_KEY": ""}
    handle = start_api(tmp_path / "data", tmp_path / "hsm.log", env=env)
    assert handle.proc.poll() is None, handle.logs()
    async with aiohttp.ClientSession() as http:
        try:
            assert "backend=pkcs11" in handle.logs()
            api = Api(http, handle.url)
            assert (await api.call("GET", "/readyz", token=None)).status == 200
            aes = await api.create("hsm-aes")
            ec = await api.create("hsm-ec", keyUsage="sign-verify", algorithm="ECC_NIST_P384")
            ct = (await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": b64(b"hsm")})).body[
                "ciphertext"
            ]
            sig = await api.call(
                "POST", api.key(ec["id"], "sign"), {"signingAlgorithm": "ECDSA_SHA_384", "data": "YQ"}
            )
            assert sig.status == 200
        finally:
            assert handle.stop() == 0
        assert not (tmp_path / "data" / "root.key").exists()  # nothing sealed by a file key
        again = start_api(tmp_path / "data", tmp_path / "hsm2.log", env=env)
        try:
            api = Api(http, again.url)
            reply = await api.call("POST", api.key(aes["id"], "decrypt"), {"ciphertext": ct})
            assert unb64(reply.body["plaintext"]) == b"hsm"
            body = {"signingAlgorithm": "ECDSA_SHA_384", "data": "YQ", "signature": sig.body["signature"]}
            assert (await api.call("POST", api.key(ec["id"], "verify"), body)).body["signatureValid"] is True
        finally:
            assert again.stop() == 0
