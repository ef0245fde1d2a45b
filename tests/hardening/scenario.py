"""A full API scenario (every route, every key type, successes and denials) that records its secrets.

The audit and log-hygiene tests run it against the in-process app and a real process, then look
for each recorded secret (plaintexts, exported material, tokens, client secrets, MACs,
signatures, shared secrets) in everything that was logged.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fixtures.api import (
    ADMIN,
    OPERATOR,
    OTHER,
    ROBOT_ID,
    ROBOT_SECRET,
    VIEWER,
    Api,
    P,
    b64,
    unb64,
)


@dataclass
class Secrets:
    values: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add(self, value: bytes) -> None:
        self.values.append(value)

    def needles(self) -> list[str]:
        """Every form a secret could take in a log line (raw text, base64, hex), long enough to be unique."""
        out = list(self.texts)
        for value in self.values:
            out += [base64.b64encode(value).decode(), value.hex()]
            if value.startswith(b"-----BEGIN"):
                out += [line for line in value.decode().splitlines()[1:-1] if len(line) > 20]
        return [n for n in out if len(n) >= 16]


async def run(api: Api, rsa_pem: bytes) -> Secrets:
    found = Secrets(texts=[ADMIN, VIEWER, OPERATOR, OTHER, ROBOT_SECRET])
    plaintext = b"PLAINTEXT-" + secrets.token_hex(16).encode()
    found.add(plaintext)

    aes = await api.create("s-aes", isExportable=True)
    ec_key = await api.create("s-ec", keyUsage="sign-verify", algorithm="ECC_NIST_P256", isExportable=True)
    ed = await api.create("s-ed", keyUsage="sign-verify", algorithm="ECC_NIST_ED25519", isExportable=True)
    mac = await api.create(
        "s-mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256", isExportable=True
    )
    ecdh = await api.create("s-ecdh", keyUsage="key-agreement", algorithm="ECC_NIST_P256", isExportable=True)
    imported = await api.call(
        "POST",
        "/api/v1/kms/keys/bulk-import",
        {
            "projectId": P,
            "keys": [
                {"name": "s-rsa", "keyUsage": "sign-verify", "algorithm": "RSA_4096",
                 "keyMaterial": b64(rsa_pem), "isExportable": True},
                {"name": "s-bad", "keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm",
                 "keyMaterial": b64(b"short")},
            ],
        },
    )  # fmt: skip
    assert imported.status == 200 and len(imported.body["keys"]) == 1, imported
    found.add(rsa_pem)
    rsa_id = imported.body["keys"][0]["id"]

    ct = await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": b64(plaintext)})
    assert (await api.call("POST", api.key(aes["id"], "decrypt"), ct.body)).body["plaintext"] == b64(
        plaintext
    )
    assert (await api.call("POST", api.key(aes["id"], "rotate"))).status == 200
    for key_id, algorithm in (
        (ec_key["id"], "ECDSA_SHA_256"),
        (ed["id"], "ED25519_SHA_512"),
        (rsa_id, "RSASSA_PSS_SHA_256"),
    ):
        signed = await api.call(
            "POST", api.key(key_id, "sign"), {"signingAlgorithm": algorithm, "data": b64(plaintext)}
        )
        found.add(unb64(signed.body["signature"]))
        verified = await api.call(
            "POST", api.key(key_id, "verify"),
            {"signingAlgorithm": algorithm, "data": b64(plaintext), "signature": signed.body["signature"]},
        )  # fmt: skip
        assert verified.body["signatureValid"] is True
        assert (await api.call("GET", api.key(key_id, "signing-algorithms"))).status == 200
        assert (await api.call("GET", api.key(key_id, "public-key"))).status == 200
    generated = await api.call("POST", api.key(mac["id"], "generate-mac"), {"data": b64(plaintext)})
    found.add(unb64(generated.body["mac"]))
    checked = await api.call(
        "POST", api.key(mac["id"], "verify-mac"), {"data": b64(plaintext), **generated.body}
    )
    assert checked.body["macValid"] is True
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = peer.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    derived = await api.call("POST", api.key(ecdh["id"], "derive-shared-secret"), {"publicKey": b64(spki)})
    found.add(unb64(derived.body["secret"]))
    for key in (aes, ec_key, ed, mac, ecdh):
        exported = await api.call("GET", api.key(key["id"], "private-key"))
        found.add(unb64(exported.body["privateKey"]))
    bulk = await api.call(
        "POST", "/api/v1/kms/keys/bulk-export-private-keys", {"keyIds": [aes["id"], rsa_id]}
    )
    assert len(bulk.body["keys"]) == 2

    assert (await api.call("GET", f"/api/v1/kms/keys?projectId={P}")).status == 200
    assert (await api.call("GET", f"/api/v1/kms/keys/key-name/s-aes?projectId={P}")).status == 200
    assert (await api.call("GET", api.key(aes["id"]))).status == 200
    assert (await api.call("PATCH", api.key(ecdh["id"]), {"description": "renamed"})).status == 200
    assert (await api.call("DELETE", api.key(ecdh["id"]))).status == 200

    login = await api.call(
        "POST",
        "/api/v1/auth/universal-auth/login",
        {"clientId": ROBOT_ID, "clientSecret": ROBOT_SECRET},
        token=None,
    )
    found.texts.append(login.body["accessToken"])
    robot = login.body["accessToken"]
    assert (
        await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": b64(plaintext)}, token=robot)
    ).status == 200

    # Denials: viewer may not encrypt, a non-member may not read, no token, a bad token.
    assert (
        await api.call("POST", api.key(aes["id"], "encrypt"), {"plaintext": b64(plaintext)}, token=VIEWER)
    ).status == 403
    assert (await api.call("GET", api.key(aes["id"]), token=OTHER)).status == 403
    assert (await api.call("GET", api.key(aes["id"]), token=None)).status == 401
    assert (await api.call("GET", api.key(aes["id"]), token="bogus-" + ADMIN)).status == 403
    bad_login = await api.call(
        "POST",
        "/api/v1/auth/universal-auth/login",
        {"clientId": ROBOT_ID, "clientSecret": "wrong-" + ROBOT_SECRET},
        token=None,
    )
    assert bad_login.status == 401
    return found
