"""Cryptographic routes over HTTP: spec §7 cases 9-13, 17-25, 34, 36-38, checked with independent
crypto (pyca/cryptography) against exported or public keys."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_der_public_key

from fixtures.api import Api, P, b64, unb64

M = b"The quick brown fox"


async def post(api: Api, key_id: str, op: str, body: dict[str, Any]) -> Any:
    reply = await api.call("POST", api.key(key_id, op), body)
    return reply


async def import_rsa(api: Api, pem: bytes, name: str = "rsa") -> str:
    reply = await api.call(
        "POST",
        "/api/v1/kms/keys/bulk-import",
        {
            "projectId": P,
            "keys": [
                {
                    "name": name,
                    "keyUsage": "sign-verify",
                    "algorithm": "RSA_4096",
                    "keyMaterial": b64(pem),
                    "isExportable": True,
                }
            ],
        },
    )
    assert reply.status == 200 and reply.body["errors"] == [], reply
    key_id: str = reply.body["keys"][0]["id"]
    return key_id


async def test_cases_9_to_13_aes_round_trip_and_layout(api: Api) -> None:
    key = await api.create("aes", isExportable=True)
    ct = unb64((await post(api, key["id"], "encrypt", {"plaintext": b64(b"hello")})).body["ciphertext"])
    assert len(ct) == 5 + 31 and ct.endswith(b"v01")
    material = unb64((await api.call("GET", api.key(key["id"], "private-key"))).body["privateKey"])
    assert AESGCM(material).decrypt(ct[:12], ct[12:-3], None) == b"hello"
    reply = await post(api, key["id"], "decrypt", {"ciphertext": b64(ct)})
    assert reply.status == 200 and unb64(reply.body["plaintext"]) == b"hello"
    again = unb64((await post(api, key["id"], "encrypt", {"plaintext": b64(b"hello")})).body["ciphertext"])
    assert again != ct
    # case 11
    for bad in [{"plaintext": "not base64!"}, {"plaintext": ""}, {}]:
        reply = await post(api, key["id"], "encrypt", bad)
        assert reply.status == 422 and reply.body["message"][0]["path"] == ["plaintext"], bad
    assert (await post(api, key["id"], "encrypt", {"plaintext": "YQ"})).status == 200
    # case 12
    at_limit = await post(api, key["id"], "encrypt", {"plaintext": b64(bytes(1_048_576))})
    assert at_limit.status == 200
    over = await post(api, key["id"], "encrypt", {"plaintext": b64(bytes(1_048_577))})
    assert over.status == 422 and over.body["message"][0]["message"] == "data cannot exceed 1048576 bytes"
    # case 13 (our decision: 400, never 500)
    tampered = bytearray(ct)
    tampered[-5] ^= 1  # inside the tag
    reply = await post(api, key["id"], "decrypt", {"ciphertext": b64(bytes(tampered))})
    assert (reply.status, reply.body["message"]) == (400, "Ciphertext cannot be decrypted with this KMS key.")
    for junk in [b"x", bytes(10), bytes(200)]:
        assert (await post(api, key["id"], "decrypt", {"ciphertext": b64(junk)})).status == 400


async def test_rsa_cases_17_to_22_24_25_35(api: Api, rsa_pem: bytes) -> None:
    aes = await api.create("aes")
    rsa_id = await import_rsa(api, rsa_pem)
    # 17
    reply = await post(api, rsa_id, "encrypt", {"plaintext": "YQ"})
    assert reply.body["message"] == "Unsupported key type, expected encrypt-decrypt but got sign-verify"
    reply = await post(api, aes["id"], "sign", {"signingAlgorithm": "RSASSA_PSS_SHA_256", "data": b64(M)})
    assert reply.body["message"] == "Unsupported key type, expected sign-verify but got encrypt-decrypt"
    # 18
    reply = await api.call("GET", api.key(rsa_id, "signing-algorithms"))
    assert reply.body["signingAlgorithms"] == [
        "RSASSA_PSS_SHA_512",
        "RSASSA_PSS_SHA_384",
        "RSASSA_PSS_SHA_256",
        "RSASSA_PKCS1_V1_5_SHA_512",
        "RSASSA_PKCS1_V1_5_SHA_384",
        "RSASSA_PKCS1_V1_5_SHA_256",
    ]
    reply = await api.call("GET", api.key(aes["id"], "signing-algorithms"))
    assert (reply.status, reply.body["message"]) == (
        400,
        f"Key with ID '{aes['id']}' is not intended for signing",
    )
    # 19
    der = unb64((await api.call("GET", api.key(rsa_id, "public-key"))).body["publicKey"])
    public = load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096
    assert public.public_numbers().e == 65537 and len(der) == 550
    assert (await api.call("GET", api.key(aes["id"], "public-key"))).status == 400
    # 20
    reply = await post(api, rsa_id, "sign", {"signingAlgorithm": "RSASSA_PSS_SHA_256", "data": b64(M)})
    assert reply.status == 200
    assert (reply.body["keyId"], reply.body["signingAlgorithm"]) == (rsa_id, "RSASSA_PSS_SHA_256")
    signature = unb64(reply.body["signature"])
    assert len(signature) == 512
    public.verify(signature, M, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    verify = await post(
        api,
        rsa_id,
        "verify",
        {"signingAlgorithm": "RSASSA_PSS_SHA_256", "data": b64(M), "signature": b64(signature)},
    )
    assert verify.body == {"signatureValid": True, "keyId": rsa_id, "signingAlgorithm": "RSASSA_PSS_SHA_256"}
    # 21
    reply = await post(
        api, rsa_id, "sign", {"signingAlgorithm": "RSASSA_PSS_SHA_256", "data": b64(M), "isDigest": True}
    )
    assert (reply.status, reply.body["message"]) == (400, "RSA PSS does not support digested input")
    # 22
    pkcs = {"signingAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}
    one = (await post(api, rsa_id, "sign", {**pkcs, "data": b64(M)})).body["signature"]
    two = (await post(api, rsa_id, "sign", {**pkcs, "data": b64(M)})).body["signature"]
    digest = (
        await post(api, rsa_id, "sign", {**pkcs, "data": b64(hashlib.sha256(M).digest()), "isDigest": True})
    ).body["signature"]
    assert one == two == digest
    wrong = await post(
        api, rsa_id, "sign", {**pkcs, "data": b64(hashlib.sha512(M).digest()), "isDigest": True}
    )
    assert wrong.status == 400
    assert wrong.body["message"].startswith("Failed to sign RSA digest with RSASSA_PKCS1_V1_5_SHA_256")
    assert wrong.body["message"].endswith("SHA256.")
    # 24
    reply = await post(api, rsa_id, "sign", {"signingAlgorithm": "ECDSA_SHA_256", "data": b64(M)})
    assert (reply.status, reply.body["message"]) == (
        400,
        "KMS RSA_4096 key cannot be used with ECDSA_SHA_256",
    )
    # 25
    corrupted = bytearray(unb64(one))
    corrupted[0] = (corrupted[0] + 1) % 256
    reply = await post(api, rsa_id, "verify", {**pkcs, "data": b64(M), "signature": b64(bytes(corrupted))})
    assert reply.status == 200 and reply.body["signatureValid"] is False
    assert (await post(api, rsa_id, "verify", {**pkcs, "data": b64(M), "signature": "!!"})).status == 422
    # 35: RSA export is PKCS#8 PEM; non-exportable keys refuse
    exported = unb64((await api.call("GET", api.key(rsa_id, "private-key"))).body["privateKey"])
    assert exported.startswith(b"-----BEGIN PRIVATE KEY-----")
    reply = await api.call("GET", api.key(aes["id"], "private-key"))
    assert (reply.status, reply.body["message"]) == (400, "You are not allowed to export this key")
    # rotation of a sign key is refused (34)
    assert (await api.call("POST", api.key(rsa_id, "rotate"))).status == 400


async def test_case_23_ecdsa(api: Api) -> None:
    key = await api.create("p256", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    reply = await api.call("GET", api.key(key["id"], "signing-algorithms"))
    assert reply.body["signingAlgorithms"] == ["ECDSA_SHA_512", "ECDSA_SHA_384", "ECDSA_SHA_256"]
    der = unb64((await api.call("GET", api.key(key["id"], "public-key"))).body["publicKey"])
    assert len(der) == 91
    public = load_der_public_key(der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    body = {"signingAlgorithm": "ECDSA_SHA_256", "data": b64(M)}
    signature = unb64((await post(api, key["id"], "sign", body)).body["signature"])
    assert signature[0] == 0x30  # DER SEQUENCE{r, s}, not raw r||s
    public.verify(signature, M, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, M + b"!", ec.ECDSA(hashes.SHA256()))
    reply = await post(api, key["id"], "verify", {**body, "data": b64(b"other"), "signature": b64(signature)})
    assert reply.status == 200 and reply.body["signatureValid"] is False
    digest = {"signingAlgorithm": "ECDSA_SHA_256", "data": b64(hashlib.sha256(M).digest()), "isDigest": True}
    reply = await post(api, key["id"], "verify", {**digest, "signature": b64(signature)})
    assert reply.body["signatureValid"] is True


async def test_case_34_rotation(api: Api) -> None:
    key = await api.create("rot")
    kid = key["id"]
    v1 = (await post(api, kid, "encrypt", {"plaintext": b64(b"one")})).body["ciphertext"]
    reply = await api.call("POST", api.key(kid, "rotate"))
    assert reply.status == 200 and reply.body["key"]["version"] == 2
    # Infisical returns the key row, whose updatedAt a rotation does not touch.
    assert {k: v for k, v in reply.body["key"].items() if k != "version"} == {
        k: v for k, v in key.items() if k != "version"
    }
    assert (await api.call("GET", api.key(kid))).body["key"]["updatedAt"] == key["updatedAt"]
    v2 = unb64((await post(api, kid, "encrypt", {"plaintext": b64(b"two")})).body["ciphertext"])
    assert v2.endswith(b"v02") and v2[-7:-3] == (2).to_bytes(4, "big") and len(v2) == 3 + 35
    assert (await api.call("POST", api.key(kid, "rotate"))).body["key"]["version"] == 3
    v3 = (await post(api, kid, "encrypt", {"plaintext": b64(b"three")})).body["ciphertext"]
    for ct, pt in [(v1, b"one"), (b64(v2), b"two"), (v3, b"three")]:
        assert unb64((await post(api, kid, "decrypt", {"ciphertext": ct})).body["plaintext"]) == pt
    await api.call("PATCH", api.key(kid), {"isDisabled": True})
    reply = await api.call("POST", api.key(kid, "rotate"))
    assert (reply.status, reply.body["message"]) == (400, "Key is disabled")


async def test_rotate_error_texts_are_infisicals(api: Api) -> None:
    missing = "6f1c1b1e-8a50-4c3e-9a43-1f2b3c4d5e6f"
    reply = await api.call("POST", api.key(missing, "rotate"))
    assert (reply.status, reply.body["message"]) == (404, f"Key with ID {missing} not found")  # unquoted
    sign = await api.create("ec-sign", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    reply = await api.call("POST", api.key(sign["id"], "rotate"))
    assert (reply.status, reply.body["message"]) == (
        400,
        "Only encrypt-decrypt keys support rotation. To rotate a sign-verify, MAC, or key-agreement "
        "key, create a new key and update your applications to use it.",
    )
    rsa_enc = await api.create("rsa-enc", keyUsage="encrypt-decrypt", algorithm="RSA_4096")
    reply = await api.call("POST", api.key(rsa_enc["id"], "rotate"))
    assert (reply.status, reply.body["message"]) == (
        400,
        "Only symmetric encrypt-decrypt keys support rotation. To rotate a sign-verify or MAC key, "
        "create a new key and update your applications to use it.",
    )


async def test_case_36_ed25519(api: Api) -> None:
    key = await api.create("ed", keyUsage="sign-verify", algorithm="ECC_NIST_ED25519")
    kid = key["id"]
    algs = (await api.call("GET", api.key(kid, "signing-algorithms"))).body["signingAlgorithms"]
    assert algs == ["ED25519_SHA_512", "ED25519_PH_SHA_512"]
    pure = {"signingAlgorithm": "ED25519_SHA_512", "data": b64(M)}
    signature = unb64((await post(api, kid, "sign", pure)).body["signature"])
    assert len(signature) == 64
    assert (await post(api, kid, "verify", {**pure, "signature": b64(signature)})).body[
        "signatureValid"
    ] is True
    bad = bytes([signature[0] ^ 1]) + signature[1:]
    assert (await post(api, kid, "verify", {**pure, "signature": b64(bad)})).body["signatureValid"] is False
    ph = {"signingAlgorithm": "ED25519_PH_SHA_512", "data": b64(hashlib.sha512(M).digest()), "isDigest": True}
    ph_sig = (await post(api, kid, "sign", ph)).body["signature"]
    assert (await post(api, kid, "verify", {**ph, "signature": ph_sig})).body["signatureValid"] is True
    assert (await post(api, kid, "sign", {**pure, "isDigest": True})).status == 400
    assert (
        await post(api, kid, "verify", {**pure, "isDigest": True, "signature": b64(signature)})
    ).status == 400


async def test_case_37_hmac(api: Api) -> None:
    key = await api.create("mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256", isExportable=True)
    kid = key["id"]
    reply = await post(api, kid, "generate-mac", {"data": b64(M)})
    assert reply.status == 200 and reply.body["macAlgorithm"] == "HMAC_SHA_256" and reply.body["keyId"] == kid
    mac = unb64(reply.body["mac"])
    material = unb64((await api.call("GET", api.key(kid, "private-key"))).body["privateKey"])
    assert mac == hmac.new(material, M, hashlib.sha256).digest() and len(mac) == 32
    ok = await post(api, kid, "verify-mac", {"data": b64(M), "mac": b64(mac)})
    assert ok.body == {"macValid": True, "keyId": kid, "macAlgorithm": "HMAC_SHA_256"}
    short = await post(api, kid, "verify-mac", {"data": b64(M), "mac": b64(mac[:31])})
    assert short.body["macValid"] is False
    aes = await api.create("aes")
    reply = await post(api, aes["id"], "generate-mac", {"data": b64(M)})
    assert reply.status == 400 and reply.body["message"].endswith("not intended for MAC generation")


async def test_case_38_key_agreement(api: Api) -> None:
    a = await api.create("ka", keyUsage="key-agreement", algorithm="ECC_NIST_P256")
    b = await api.create("kb", keyUsage="key-agreement", algorithm="ECC_NIST_P256")
    pub_a = (await api.call("GET", api.key(a["id"], "public-key"))).body["publicKey"]
    pub_b = (await api.call("GET", api.key(b["id"], "public-key"))).body["publicKey"]
    ab = await post(api, a["id"], "derive-shared-secret", {"publicKey": pub_b})
    ba = await post(api, b["id"], "derive-shared-secret", {"publicKey": pub_a})
    assert ab.status == 200 and ab.body["keyId"] == a["id"]
    assert len(unb64(ab.body["secret"])) == 32 and b64(unb64(ab.body["secret"])) == ab.body["secret"]
    assert ab.body["secret"] == ba.body["secret"]
    aes = await api.create("aes")
    reply = await post(api, aes["id"], "derive-shared-secret", {"publicKey": pub_b})
    assert reply.status == 400 and "not intended for shared secret derivation" in reply.body["message"]
    reply = await post(api, a["id"], "derive-shared-secret", {"publicKey": b64(b"not a real public key")})
    assert reply.status == 400 and "Invalid public key" in reply.body["message"]
    assert "not a real" not in reply.body["message"]
    reply = await api.call(
        "POST",
        "/api/v1/kms/keys",
        {"projectId": P, "name": "kx", "keyUsage": "key-agreement", "algorithm": "aes-256-gcm"},
    )
    assert reply.status == 422 and "key agreement algorithm" in reply.body["message"][0]["message"]
    # a peer key made outside the KMS works too
    peer = ec.generate_private_key(ec.SECP256R1())
    der = peer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = unb64((await post(api, a["id"], "derive-shared-secret", {"publicKey": b64(der)})).body["secret"])
    mine = load_der_public_key(unb64(pub_a))
    assert isinstance(mine, ec.EllipticCurvePublicKey)
    assert secret == peer.exchange(ec.ECDH(), mine)
