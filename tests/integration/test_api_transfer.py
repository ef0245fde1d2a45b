"""Export and import over HTTP: spec §7 cases 35, 39, 40 and the bulk-export errors of §2.14."""

from __future__ import annotations

import os
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fixtures.api import Api, P, b64, unb64

IMPORT = "/api/v1/kms/keys/bulk-import"
EXPORT = "/api/v1/kms/keys/bulk-export-private-keys"


async def test_case_39_bulk_import(api: Api) -> None:
    material = os.urandom(32)
    entry = {
        "name": "imp",
        "keyUsage": "encrypt-decrypt",
        "algorithm": "aes-256-gcm",
        "keyMaterial": b64(material),
    }
    reply = await api.call("POST", IMPORT, {"projectId": P, "keys": [entry]})
    assert reply.status == 200 and reply.body["errors"] == []
    [imported] = reply.body["keys"]
    assert imported["name"] == "imp" and uuid.UUID(imported["id"])
    # The imported material really is the key: a ciphertext made locally decrypts through the API.
    nonce = os.urandom(12)
    local = nonce + AESGCM(material).encrypt(nonce, b"imported", None) + b"v01"
    out = await api.call("POST", api.key(imported["id"], "decrypt"), {"ciphertext": b64(local)})
    assert unb64(out.body["plaintext"]) == b"imported"
    again = await api.call("POST", IMPORT, {"projectId": P, "keys": [entry]})
    assert again.status == 200 and again.body["keys"] == []
    assert again.body["errors"] == [
        {"name": "imp", "message": 'A key with the name "imp" already exists in this project'}
    ]
    short = {**entry, "name": "short", "keyMaterial": b64(os.urandom(31))}
    reply = await api.call("POST", IMPORT, {"projectId": P, "keys": [short]})
    [error] = reply.body["errors"]
    assert error["name"] == "short" and "31" in error["message"]
    missing_alg = {k: v for k, v in entry.items() if k != "algorithm"}
    reply = await api.call("POST", IMPORT, {"projectId": P, "keys": [missing_alg]})
    assert reply.status == 422 and reply.body["message"][0]["message"] == "algorithm is required"


async def test_case_40_bulk_export(api: Api) -> None:
    aes = await api.create("aes", isExportable=True)
    ec = await api.create("ec", keyUsage="sign-verify", algorithm="ECC_NIST_P256", isExportable=True)
    reply = await api.call("POST", EXPORT, {"keyIds": [aes["id"], ec["id"], aes["id"]]})
    assert reply.status == 200
    by_id = {k["keyId"]: k for k in reply.body["keys"]}
    assert set(by_id) == {aes["id"], ec["id"]}
    assert "publicKey" not in by_id[aes["id"]] and len(unb64(by_id[aes["id"]]["privateKey"])) == 32
    assert unb64(by_id[ec["id"]]["privateKey"]).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert by_id[ec["id"]]["publicKey"] and by_id[ec["id"]]["algorithm"] == "ECC_NIST_P256"
    assert by_id[ec["id"]]["keyUsage"] == "sign-verify" and by_id[ec["id"]]["name"] == "ec"
    other = await api.create("other", project="second", isExportable=True)
    reply = await api.call("POST", EXPORT, {"keyIds": [aes["id"], other["id"]]})
    assert (reply.status, reply.body["message"]) == (400, "All keys must belong to the same project")
    missing = str(uuid.uuid4())
    reply = await api.call("POST", EXPORT, {"keyIds": [missing]})
    assert (reply.status, reply.body["message"]) == (404, "No keys found for the provided IDs")
    reply = await api.call("POST", EXPORT, {"keyIds": [aes["id"], missing]})
    assert (reply.status, reply.body["message"]) == (404, f"Keys not found for IDs: {missing}")
    locked = await api.create("locked")
    reply = await api.call("POST", EXPORT, {"keyIds": [locked["id"]]})
    assert (reply.status, reply.body["message"]) == (400, "You are not allowed to export this key")
    assert (await api.call("POST", EXPORT, {"keyIds": []})).status == 422
