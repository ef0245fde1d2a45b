"""Export and import over HTTP: spec §7 cases 35, 39, 40 and the bulk-export errors of §2.14."""

from __future__ import annotations

import os
import uuid

from cryptography.hazmat.primitives import serialization
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


async def test_bulk_import_takes_openssl_pkcs1_and_sec1_pem(api: Api, openssl_keys: dict[str, bytes]) -> None:
    """`openssl genrsa -traditional` and `openssl ecparam -genkey` output imports as Infisical's does,
    the material is what signs, and export gives it back normalised to PKCS#8 PEM."""
    entries = [
        ("rsa-pkcs1", "rsa-pkcs1", "RSA_4096", "RSASSA_PKCS1_V1_5_SHA_256"),
        ("ec-p256", "ec-prime256v1", "ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ec-p384", "ec-secp384r1", "ECC_NIST_P384", "ECDSA_SHA_384"),
        ("ec-p521", "ec-secp521r1", "ECC_NIST_P521", "ECDSA_SHA_512"),
    ]
    body = {
        "projectId": P,
        "keys": [
            {"name": name, "keyUsage": "sign-verify", "algorithm": alg,
             "keyMaterial": b64(openssl_keys[form]), "isExportable": True}
            for name, form, alg, _ in entries
        ],
    }  # fmt: skip
    reply = await api.call("POST", IMPORT, body)
    assert reply.status == 200 and reply.body["errors"] == [], reply
    ids = {k["name"]: k["id"] for k in reply.body["keys"]}
    for name, form, _, signing in entries:
        local = serialization.load_pem_private_key(openssl_keys[form], None)
        spki = local.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public = await api.call("GET", api.key(ids[name], "public-key"))
        assert unb64(public.body["publicKey"]) == spki, name
        sign = {"data": b64(b"m"), "signingAlgorithm": signing}
        signed = await api.call("POST", api.key(ids[name], "sign"), sign)
        assert signed.status == 200, signed
        exported = unb64((await api.call("GET", api.key(ids[name], "private-key"))).body["privateKey"])
        assert exported.startswith(b"-----BEGIN PRIVATE KEY-----\n"), name  # stored normalised
        again = serialization.load_pem_private_key(exported, None)
        assert again.private_numbers() == local.private_numbers(), name  # type: ignore[union-attr]


async def test_bulk_import_refuses_weak_material(api: Api, openssl_keys: dict[str, bytes]) -> None:
    def entry(name: str, usage: str, alg: str, material: bytes) -> dict[str, str]:
        return {"name": name, "keyUsage": usage, "algorithm": alg, "keyMaterial": b64(material)}

    body = {
        "projectId": P,
        "keys": [
            entry("rsa-e3", "sign-verify", "RSA_4096", openssl_keys["rsa-e3"]),
            entry("zero-aes", "encrypt-decrypt", "aes-256-gcm", bytes(32)),
            entry("zero-aes128", "encrypt-decrypt", "aes-128-gcm", bytes(16)),
            entry("zero-hmac", "generate-verify-mac", "HMAC_SHA_256", bytes(64)),
            entry("good-hmac", "generate-verify-mac", "HMAC_SHA_256", os.urandom(64)),
        ],
    }
    reply = await api.call("POST", IMPORT, body)
    assert reply.status == 200
    assert [k["name"] for k in reply.body["keys"]] == ["good-hmac"]
    zero = "Invalid key material. An all-zero key is not allowed."
    weak_rsa = "RSA key public exponent must be odd, at least 65,537, and less than 2^256."
    assert reply.body["errors"] == [
        {"name": "rsa-e3", "message": weak_rsa},
        {"name": "zero-aes", "message": zero},
        {"name": "zero-aes128", "message": zero},
        {"name": "zero-hmac", "message": zero},
    ]
    listed = await api.call("GET", f"/api/v1/kms/keys?projectId={P}")
    assert [k["name"] for k in listed.body["keys"]] == ["good-hmac"]  # nothing weak was stored


async def test_bulk_import_hmac_length_message_is_infisicals(api: Api) -> None:
    body = {"projectId": P, "keys": [
        {"name": "short", "keyUsage": "generate-verify-mac", "algorithm": "HMAC_SHA_512",
         "keyMaterial": b64(os.urandom(15))},
    ]}  # fmt: skip
    reply = await api.call("POST", IMPORT, body)
    message = "Invalid HMAC key material length. Expected between 16 and 1024 bytes, got 15."
    assert reply.body["errors"] == [{"name": "short", "message": message}]
