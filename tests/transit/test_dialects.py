"""One key, two dialects: a Transit key `orders` in namespace `team-a` is the Infisical key
`orders` of project `team-a`; ciphertexts, signatures and MACs of either dialect verify and
decrypt through the other once re-framed (kms_api.transit.framing). Also: the tokens both
dialects accept, the error shape each keeps, the audit trail, and KubeKMS's documented
departures from OpenBao (README, "Vault Transit API")."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from servers import KubeKms

from fixtures.api import OPERATOR, OTHER, ROBOT_ID, ROBOT_SECRET, VIEWER

pytestmark = pytest.mark.integration


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Client:
    def __init__(self, server: KubeKms) -> None:
        self.server = server
        self.http = requests.Session()

    def infisical(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.server.token}"}
        return self.http.request(method, self.server.url + path, json=body, headers=headers, timeout=60)

    def transit(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        namespace: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = {"X-Vault-Token": token or self.server.token, **(headers or {})}
        if namespace is not None:
            sent["X-Vault-Namespace"] = namespace
        return self.http.request(method, f"{self.server.url}/v1/{path}", json=body, headers=sent, timeout=60)

    def create(self, project: str, name: str, **fields: Any) -> dict[str, Any]:
        reply = self.infisical("POST", "/api/v1/kms/keys", {"projectId": project, "name": name, **fields})
        assert reply.status_code == 200, reply.text
        key: dict[str, Any] = reply.json()["key"]
        return key


@pytest.fixture
def client(kubekms: KubeKms) -> Client:
    return Client(kubekms)


def test_an_infisical_key_is_the_transit_key_of_its_project(client: Client) -> None:
    client.create("team-a", "orders")
    read = client.transit("GET", "transit/keys/orders", namespace="team-a")
    assert read.status_code == 200, read.text
    assert read.json()["data"]["name"] == "orders" and read.json()["data"]["type"] == "aes256-gcm96"
    assert client.transit("GET", "transit/keys/orders").status_code == 404  # project `default`
    assert client.transit("GET", "transit/keys/orders", namespace="team-b").status_code == 404
    listed = client.transit("GET", "transit/keys?list=true", namespace="team-a/")  # Vault's trailing slash
    assert listed.json()["data"]["keys"] == ["orders"]
    # and the other way: a key made through Transit is an Infisical key of project `default`
    assert client.transit("POST", "transit/keys/made-by-transit", {"type": "ecdsa-p384"}).status_code == 200
    found = client.infisical("GET", "/api/v1/kms/keys/key-name/made-by-transit?projectId=default").json()[
        "key"
    ]
    assert found["algorithm"] == "ECC_NIST_P384" and found["keyUsage"] == "sign-verify"
    assert found["hasDeleteProtection"] is True  # Transit's deletion_allowed=false


def test_ciphertexts_convert_between_the_framings(client: Client) -> None:
    key = client.create("team-a", "framed")
    blob = base64.b64decode(
        client.infisical("POST", f"/api/v1/kms/keys/{key['id']}/encrypt", {"plaintext": b64(b"one")}).json()[
            "ciphertext"
        ]
    )
    assert blob.endswith(b"v01")
    as_transit = "vault:v1:" + b64(blob[:-3])  # IV||CT||TAG, trailer dropped
    decrypted = client.transit(
        "POST", "transit/decrypt/framed", {"ciphertext": as_transit}, namespace="team-a"
    )
    assert base64.b64decode(decrypted.json()["data"]["plaintext"]) == b"one"

    framed = client.transit("POST", "transit/encrypt/framed", {"plaintext": b64(b"two")}, namespace="team-a")
    version, payload = framed.json()["data"]["ciphertext"].split(":")[1:]
    assert version == "v1"
    as_infisical = b64(base64.b64decode(payload) + b"v01")
    plain = client.infisical("POST", f"/api/v1/kms/keys/{key['id']}/decrypt", {"ciphertext": as_infisical})
    assert base64.b64decode(plain.json()["plaintext"]) == b"two"

    # After an Infisical rotation, Transit encrypts with v2 and Infisical reads it with the v02 trailer.
    assert client.infisical("POST", f"/api/v1/kms/keys/{key['id']}/rotate").status_code == 200
    framed = client.transit(
        "POST", "transit/encrypt/framed", {"plaintext": b64(b"three")}, namespace="team-a"
    )
    assert framed.json()["data"]["key_version"] == 2
    version, payload = framed.json()["data"]["ciphertext"].split(":")[1:]
    assert version == "v2"
    as_infisical = b64(base64.b64decode(payload) + (2).to_bytes(4, "big") + b"v02")
    plain = client.infisical("POST", f"/api/v1/kms/keys/{key['id']}/decrypt", {"ciphertext": as_infisical})
    assert base64.b64decode(plain.json()["plaintext"]) == b"three"
    old = client.transit("POST", "transit/decrypt/framed", {"ciphertext": as_transit}, namespace="team-a")
    assert base64.b64decode(old.json()["data"]["plaintext"]) == b"one"
    assert (
        client.transit("GET", "transit/keys/framed", namespace="team-a").json()["data"]["latest_version"] == 2
    )


def test_a_transit_ciphertext_is_plain_aes_gcm(client: Client) -> None:
    """nonce(12) || ciphertext || tag(16) under the key's own material (exported through Infisical)."""
    assert client.transit("POST", "transit/keys/exportable", {"exportable": True}).status_code == 200
    key = client.infisical("GET", "/api/v1/kms/keys/key-name/exportable?projectId=default").json()["key"]
    material = base64.b64decode(
        client.infisical("GET", f"/api/v1/kms/keys/{key['id']}/private-key").json()["privateKey"]
    )
    ciphertext = client.transit("POST", "transit/encrypt/exportable", {"plaintext": b64(b"raw gcm")})
    payload = base64.b64decode(ciphertext.json()["data"]["ciphertext"].removeprefix("vault:v1:"))
    assert AESGCM(material).decrypt(payload[:12], payload[12:], None) == b"raw gcm"


def test_signatures_and_macs_verify_across_dialects(client: Client) -> None:
    signer = client.create("default", "cross-signer", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    signed = client.transit("POST", "transit/sign/cross-signer", {"input": b64(b"doc")}).json()["data"][
        "signature"
    ]
    verified = client.infisical(
        "POST",
        f"/api/v1/kms/keys/{signer['id']}/verify",
        {
            "data": b64(b"doc"),
            "signature": signed.removeprefix("vault:v1:"),
            "signingAlgorithm": "ECDSA_SHA_256",
        },
    )
    assert verified.json()["signatureValid"] is True
    infisical_signature = client.infisical(
        "POST",
        f"/api/v1/kms/keys/{signer['id']}/sign",
        {
            "data": b64(b"doc"),
            "signingAlgorithm": "ECDSA_SHA_512",
        },
    ).json()["signature"]
    reply = client.transit(
        "POST",
        "transit/verify/cross-signer/sha2-512",
        {
            "input": b64(b"doc"),
            "signature": "vault:v1:" + infisical_signature,
        },
    )
    assert reply.json()["data"]["valid"] is True

    mac_key = client.create("default", "cross-mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_512")
    mac = client.infisical(
        "POST", f"/api/v1/kms/keys/{mac_key['id']}/generate-mac", {"data": b64(b"m")}
    ).json()["mac"]
    transit_mac = client.transit("POST", "transit/hmac/cross-mac/sha2-512", {"input": b64(b"m")}).json()[
        "data"
    ]["hmac"]
    assert transit_mac == "vault:v1:" + mac
    read = client.transit("GET", "transit/keys/cross-mac").json()["data"]
    assert read["type"] == "hmac" and read["key_size"] == 64
    # Vault's default hash (sha2-256) with the same key bytes, as OpenBao computes another hash
    other = client.transit("POST", "transit/hmac/cross-mac", {"input": b64(b"m")}).json()["data"]["hmac"]
    sha256 = client.transit("POST", "transit/hmac/cross-mac/sha2-256", {"input": b64(b"m")}).json()["data"]
    assert other == sha256["hmac"] != transit_mac and len(base64.b64decode(other.split(":")[2])) == 32


def test_the_same_tokens_and_roles(client: Client, kubekms: KubeKms) -> None:
    client.create("proj", "roles")
    assert client.transit("GET", "transit/keys/roles", namespace="proj", token=VIEWER).status_code == 200
    denied = client.transit(
        "POST", "transit/encrypt/roles", {"plaintext": b64(b"x")}, namespace="proj", token=VIEWER
    )
    assert denied.status_code == 403 and denied.json() == {"errors": ["permission denied"]}
    allowed = client.transit(
        "POST", "transit/encrypt/roles", {"plaintext": b64(b"x")}, namespace="proj", token=OPERATOR
    )
    assert allowed.status_code == 200
    other = client.transit("GET", "transit/keys/roles", namespace="proj", token=OTHER)
    assert other.status_code == 403
    # a universal-auth access token, sent as X-Vault-Token and as a Bearer token
    login = client.http.post(
        kubekms.url + "/api/v1/auth/universal-auth/login",
        json={"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET},
    )
    access = login.json()["accessToken"]
    as_vault = client.transit(
        "POST", "transit/encrypt/roles", {"plaintext": b64(b"y")}, namespace="proj", token=access
    )
    assert as_vault.status_code == 200
    as_bearer = client.http.post(
        kubekms.url + "/v1/transit/encrypt/roles",
        json={"plaintext": b64(b"y")},
        headers={"Authorization": f"Bearer {access}", "X-Vault-Namespace": "proj"},
    )
    assert as_bearer.status_code == 200
    # an unknown path tells an unauthenticated caller nothing
    assert client.http.get(kubekms.url + "/v1/transit/whatever").json() == {"errors": ["permission denied"]}


def test_each_dialect_keeps_its_error_shape(client: Client, kubekms: KubeKms) -> None:
    infisical = client.http.get(kubekms.url + "/api/v1/kms/keys/not-a-uuid/nothing")
    body = infisical.json()
    assert infisical.status_code == 404 and set(body) == {"reqId", "statusCode", "message", "error"}
    unauthenticated = client.http.get(kubekms.url + "/api/v1/kms/keys?projectId=p").json()
    assert unauthenticated["statusCode"] == 401 and unauthenticated["error"] == "UnauthorizedError"
    transit = client.transit("GET", "transit/keys/missing-one")
    assert transit.status_code == 404 and transit.json() == {"errors": []}
    assert transit.headers["X-Request-Id"].startswith("req-")


def test_the_audit_trail_and_access_log_name_transit_routes(client: Client, kubekms: KubeKms) -> None:
    client.transit("POST", "transit/keys/audited", {})
    client.transit("POST", "transit/encrypt/audited", {"plaintext": b64(b"secret-plaintext")})
    client.transit("POST", "transit/encrypt/audited", {"plaintext": b64(b"z")}, token=VIEWER)
    events = [json.loads(line) for line in kubekms.logs().splitlines() if line.startswith("{")]
    encrypts = [
        e
        for e in events
        if e.get("type") == "cmek-encrypt" and e.get("route") == "/v1/transit/encrypt/{name}"
    ]
    assert any(e["outcome"] == "success" and e["project"] == "default" for e in encrypts)
    denied = [e for e in encrypts if e["outcome"] == "denied"]
    assert any(e["status"] == 403 and "viewer" in e["identity"] for e in denied), denied
    assert "secret-plaintext" not in kubekms.logs() and b64(b"secret-plaintext") not in kubekms.logs()


def test_departures_from_openbao(client: Client) -> None:
    """What KubeKMS answers where OpenBao cannot be followed (README: differences)."""
    assert client.transit("POST", "transit/keys/dep-aes", {}).status_code == 200
    # OpenBao fails a whole batch with a 500 for an item without plaintext: one bad item, one error.
    batch = client.transit(
        "POST", "transit/encrypt/dep-aes", {"batch_input": [{"plaintext": b64(b"a")}, {}, 5]}
    )
    results = batch.json()["data"]["batch_results"]
    assert batch.status_code == 400 and "ciphertext" in results[0]
    assert results[1] == {"error": "missing plaintext to encrypt", "reference": ""}
    assert results[2]["error"] == "batch item is not an object"
    decrypts = client.transit("POST", "transit/decrypt/dep-aes", {"batch_input": [{}]}).json()["data"]
    assert decrypts["batch_results"][0]["error"] == "missing ciphertext to decrypt"
    # OpenBao 500s for an hmac key without key_size; KubeKMS makes the 32-byte HMAC-SHA-256 key.
    mac = client.transit("POST", "transit/keys/dep-mac", {"type": "hmac"})
    assert mac.status_code == 200 and mac.json()["data"]["key_size"] == 32
    assert (
        client.transit("POST", "transit/keys/dep-mac2", {"type": "hmac", "key_size": 64}).status_code == 400
    )
    # derivation of a key type OpenBao cannot derive: a 400 where OpenBao 500s (same text)
    derived_p256 = {"derived": True, "type": "ecdsa-p256"}
    refused = client.transit("POST", "transit/keys/dep-x", derived_p256)
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        "key derivation and convergent encryption not supported for keys of type ecdsa-p256"
    ]
    # OpenBao answers these signing errors with a 500; KubeKMS with a 400 and OpenBao's text
    assert client.transit("POST", "transit/keys/dep-rsa", {"type": "rsa-2048"}).status_code == 200
    wrong_digest = client.transit("POST", "transit/sign/dep-rsa", {"input": b64(b"short"), "prehashed": True})
    assert wrong_digest.status_code == 400
    assert wrong_digest.json()["errors"] == ["crypto/rsa: input must be hashed with given hash"]
    big_salt = client.transit("POST", "transit/sign/dep-rsa", {"input": b64(b"a"), "salt_length": 223})
    assert big_salt.status_code == 400
    assert big_salt.json()["errors"] == ["requested salt length 223 is invalid"]
    # a P-521 digest over 64 bytes whose integer needs more than 512 bits (OpenBao signs it)
    assert client.transit("POST", "transit/keys/dep-p521", {"type": "ecdsa-p521"}).status_code == 200
    long_digest = {"input": b64(b"\xff" * 66), "prehashed": True}
    assert client.transit("POST", "transit/sign/dep-p521", long_digest).status_code == 400
    # rsa-4096 made through Transit has usage sign-verify, and Transit lets it encrypt too, as
    # OpenBao does (tests/transit/test_key_types.py); an Infisical encrypt-decrypt RSA_4096 key
    # encrypts (RSA-OAEP-SHA-256) and signs through Transit likewise
    client.create("default", "dep-rsa-enc", keyUsage="encrypt-decrypt", algorithm="RSA_4096")
    sealed = client.transit("POST", "transit/encrypt/dep-rsa-enc", {"plaintext": b64(b"oaep")}).json()["data"]
    opened = client.transit("POST", "transit/decrypt/dep-rsa-enc", {"ciphertext": sealed["ciphertext"]})
    assert base64.b64decode(opened.json()["data"]["plaintext"]) == b"oaep"
    # lookup-self never returns the token it was asked with
    me = client.transit("GET", "auth/token/lookup-self").json()["data"]
    assert client.server.token not in json.dumps(me)
