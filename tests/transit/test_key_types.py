"""The Transit-only key types (chacha20-poly1305, rsa-2048, rsa-3072) across both dialects, and
`associated_data` against the raw AEADs.

Decision (README, "Vault Transit API"): these types are created through Transit (or declared as
a KmsKey); the Infisical dialect cannot create or import them (its algorithm enum has no such
name: a 422 naming the valid options), but shows them under their stored value
(`chacha20-poly1305`, `RSA_2048`, `RSA_3072`) and uses them by id like any key of their usage.
RSA keys made through Transit have usage sign-verify and Transit also lets them encrypt
(RSA-OAEP-SHA-256), as OpenBao's rsa-* keys do.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from servers import KubeKms
from test_dialects import Client, b64

pytestmark = pytest.mark.integration

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@pytest.fixture
def client(kubekms: KubeKms) -> Client:
    return Client(kubekms)


def _infisical_key(client: Client, name: str) -> dict[str, object]:
    reply = client.infisical("GET", f"/api/v1/kms/keys/key-name/{name}?projectId=default")
    assert reply.status_code == 200, reply.text
    key: dict[str, object] = reply.json()["key"]
    return key


def _material(client: Client, key_id: object) -> bytes:
    reply = client.infisical("GET", f"/api/v1/kms/keys/{key_id}/private-key")
    assert reply.status_code == 200, reply.text
    return base64.b64decode(reply.json()["privateKey"])


def test_chacha20_keys_encrypt_in_both_dialects_and_are_plain_chacha20_poly1305(client: Client) -> None:
    made = client.transit("POST", "transit/keys/chacha", {"type": "chacha20-poly1305", "exportable": True})
    assert made.status_code == 200, made.text
    assert made.json()["data"]["type"] == "chacha20-poly1305"
    key = _infisical_key(client, "chacha")
    assert key["algorithm"] == "chacha20-poly1305" and key["keyUsage"] == "encrypt-decrypt"
    material = _material(client, key["id"])
    assert len(material) == 32

    framed = client.transit(
        "POST", "transit/encrypt/chacha", {"plaintext": b64(b"x"), "associated_data": b64(b"ad")}
    )
    payload = base64.b64decode(framed.json()["data"]["ciphertext"].removeprefix("vault:v1:"))
    assert ChaCha20Poly1305(material).decrypt(payload[:12], payload[12:], b"ad") == b"x"
    # the Infisical dialect encrypts with it by id; its ciphertext decrypts through Transit re-framed
    blob = base64.b64decode(
        client.infisical("POST", f"/api/v1/kms/keys/{key['id']}/encrypt", {"plaintext": b64(b"y")}).json()[
            "ciphertext"
        ]
    )
    assert blob.endswith(b"v01")
    plain = client.transit("POST", "transit/decrypt/chacha", {"ciphertext": "vault:v1:" + b64(blob[:-3])})
    assert base64.b64decode(plain.json()["data"]["plaintext"]) == b"y"
    # a ciphertext made outside KubeKMS with the material decrypts through Transit
    nonce = bytes(12)
    outside = "vault:v1:" + b64(nonce + ChaCha20Poly1305(material).encrypt(nonce, b"z", b"ad"))
    plain = client.transit(
        "POST", "transit/decrypt/chacha", {"ciphertext": outside, "associated_data": b64(b"ad")}
    )
    assert base64.b64decode(plain.json()["data"]["plaintext"]) == b"z"


def test_the_infisical_dialect_cannot_create_transit_only_types(client: Client) -> None:
    for algorithm, usage in (("chacha20-poly1305", "encrypt-decrypt"), ("RSA_2048", "sign-verify")):
        reply = client.infisical(
            "POST",
            "/api/v1/kms/keys",
            {"projectId": "default", "name": "nope", "keyUsage": usage, "algorithm": algorithm},
        )
        assert reply.status_code == 422, reply.text
        assert "aes-256-gcm" in reply.text and set(reply.json()) >= {
            "reqId",
            "statusCode",
            "message",
            "error",
        }


@pytest.mark.parametrize("bits", [2048, 3072])
def test_transit_rsa_keys_both_encrypt_and_sign(client: Client, bits: int) -> None:
    name = f"rsa{bits}"
    made = client.transit("POST", f"transit/keys/{name}", {"type": f"rsa-{bits}", "exportable": True})
    data = made.json()["data"]
    assert data["type"] == f"rsa-{bits}" and data["keys"]["1"]["name"] == f"rsa-{bits}"
    assert data["supports_encryption"] and data["supports_decryption"] and data["supports_signing"]
    key = _infisical_key(client, name)
    assert key["algorithm"] == f"RSA_{bits}" and key["keyUsage"] == "sign-verify"
    private = serialization.load_pem_private_key(_material(client, key["id"]), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == bits

    framed = client.transit("POST", f"transit/encrypt/{name}", {"plaintext": b64(b"secret")})
    raw = base64.b64decode(framed.json()["data"]["ciphertext"].removeprefix("vault:v1:"))
    assert len(raw) == bits // 8 and private.decrypt(raw, OAEP) == b"secret"
    outside = "vault:v1:" + b64(private.public_key().encrypt(b"back", OAEP))
    plain = client.transit("POST", f"transit/decrypt/{name}", {"ciphertext": outside})
    assert base64.b64decode(plain.json()["data"]["plaintext"]) == b"back"
    # the OAEP limit is the key's: k - 2*32 - 2 bytes
    limit = bits // 8 - 66
    assert (
        client.transit("POST", f"transit/encrypt/{name}", {"plaintext": b64(bytes(limit))}).status_code == 200
    )
    assert (
        client.transit("POST", f"transit/encrypt/{name}", {"plaintext": b64(bytes(limit + 1))}).status_code
        == 400
    )

    signed = client.transit(
        "POST", f"transit/sign/{name}", {"input": b64(b"m"), "signature_algorithm": "pkcs1v15"}
    )
    signature = base64.b64decode(signed.json()["data"]["signature"].removeprefix("vault:v1:"))
    private.public_key().verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())
    # Infisical signs with it by id (its usage is sign-verify) and refuses to encrypt with it
    infisical = client.infisical(
        "POST",
        f"/api/v1/kms/keys/{key['id']}/sign",
        {"signingAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256", "data": b64(b"m")},
    )
    assert infisical.status_code == 200 and base64.b64decode(infisical.json()["signature"]) == signature
    refused = client.infisical("POST", f"/api/v1/kms/keys/{key['id']}/encrypt", {"plaintext": b64(b"m")})
    assert refused.status_code == 400 and "expected encrypt-decrypt" in refused.text


def test_associated_data_is_aes_gcm_aad(client: Client) -> None:
    assert client.transit("POST", "transit/keys/aad", {"exportable": True}).status_code == 200
    material = _material(client, _infisical_key(client, "aad")["id"])
    framed = client.transit(
        "POST", "transit/encrypt/aad", {"plaintext": b64(b"p"), "associated_data": b64(b"ctx")}
    )
    payload = base64.b64decode(framed.json()["data"]["ciphertext"].removeprefix("vault:v1:"))
    assert AESGCM(material).decrypt(payload[:12], payload[12:], b"ctx") == b"p"
    for wrong in (None, b64(b"other")):
        body = {"ciphertext": framed.json()["data"]["ciphertext"], "associated_data": wrong}
        refused = client.transit("POST", "transit/decrypt/aad", body)
        assert refused.status_code == 400 and refused.json()["errors"] == [
            "cipher: message authentication failed"
        ]
    bad = client.transit("POST", "transit/encrypt/aad", {"plaintext": b64(b"p"), "associated_data": "!"})
    assert bad.status_code == 400, "OpenBao answers 500 here; KubeKMS a 400 with the same text"
    assert bad.json()["errors"][0].startswith("unable to get associated_data/additional_data from factory[0]")
