"""Transit BYOK in KubeKMS alone: the wrapping key is one per data directory, sealed at rest and
the same after a restart; imported material goes through the core's import checks; a caller
without `create` never reaches the unwrapping."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from servers import KubeKms, OpenBao, start_kubekms

from fixtures.api import VIEWER, P

pytestmark = pytest.mark.integration


def wrapped(pem: str, material: bytes) -> str:
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey)
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return base64.b64encode(
        wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
    ).decode()


def test_the_wrapping_key_survives_a_restart_and_is_sealed_at_rest(tmp_path: Path) -> None:
    server = start_kubekms(tmp_path)
    assert server.process is not None
    headers = {"X-Vault-Token": server.token}
    first = requests.get(f"{server.url}/v1/transit/wrapping_key", headers=headers, timeout=60).json()
    pem = first["data"]["public_key"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096
    key = os.urandom(32)
    reply = requests.post(
        f"{server.url}/v1/transit/keys/byok/import",
        json={"ciphertext": wrapped(pem, key)},
        headers=headers,
        timeout=60,
    )
    assert reply.status_code == 204, reply.text
    server.process.stop()

    stored = (tmp_path / "data" / "transit-wrapping-key.sealed").read_bytes()
    assert b"PRIVATE KEY" not in stored and b"\x30\x82" not in stored[:4]  # no PEM, no bare DER

    again = start_kubekms(tmp_path)
    assert again.process is not None
    try:
        second = requests.get(f"{again.url}/v1/transit/wrapping_key", headers=headers, timeout=60).json()
        assert second["data"]["public_key"] == pem
        # A ciphertext wrapped for the first process imports into the second.
        reply = requests.post(
            f"{again.url}/v1/transit/keys/byok/import_version",
            json={"ciphertext": wrapped(pem, os.urandom(32))},
            headers=headers,
            timeout=60,
        )
        assert reply.status_code == 204, reply.text
        read = requests.get(f"{again.url}/v1/transit/keys/byok", headers=headers, timeout=60).json()
        assert read["data"]["latest_version"] == 2
        # A viewer may read the wrapping key but not import.
        viewer = {"X-Vault-Token": VIEWER, "X-Vault-Namespace": P}
        assert (
            requests.get(f"{again.url}/v1/transit/wrapping_key", headers=viewer, timeout=60).status_code
            == 200
        )
        refused = requests.post(
            f"{again.url}/v1/transit/keys/other/import",
            json={"ciphertext": wrapped(pem, os.urandom(32))},
            headers=viewer,
            timeout=60,
        )
        assert (refused.status_code, refused.json()) == (403, {"errors": ["permission denied"]})
    finally:
        again.process.stop()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "aes256-gcm96"}, "Invalid key material. An all-zero key is not allowed."),
        ({"type": "hmac"}, "Invalid key material. An all-zero key is not allowed."),
    ],
)
def test_weak_material_is_refused_by_the_core(tmp_path: Path, body: dict[str, str], message: str) -> None:
    server = start_kubekms(tmp_path)
    assert server.process is not None
    headers = {"X-Vault-Token": server.token}
    try:
        pem = requests.get(f"{server.url}/v1/transit/wrapping_key", headers=headers, timeout=60).json()[
            "data"
        ]["public_key"]
        reply = requests.post(
            f"{server.url}/v1/transit/keys/weak/import",
            json={**body, "ciphertext": wrapped(pem, bytes(32))},
            headers=headers,
            timeout=60,
        )
        assert (reply.status_code, reply.json()) == (400, {"errors": [f"error importing key: {message}"]})
        assert (
            requests.get(f"{server.url}/v1/transit/keys/weak", headers=headers, timeout=60).status_code == 404
        )
    finally:
        server.process.stop()


def _wrap_for(server: OpenBao | KubeKms, material: bytes) -> str:
    pem = requests.get(
        f"{server.url}/v1/transit/wrapping_key", headers={"X-Vault-Token": server.token}, timeout=60
    ).json()["data"]["public_key"]
    return wrapped(pem, material)


def _multierror(text: str) -> str:
    return f"1 error occurred:\n\t* {text}\n\n"


# (path, body with "$blob" for the material wrapped for each server, material, OpenBao's text)
REFUSALS = [
    ("transit/keys/r-new/import", {}, b"", "provided type does not support public_key import"),
    ("transit/keys/r-new/import", {"ciphertext": "!!"}, b"", "illegal base64 data at input byte 0"),
    ("transit/keys/r-new/import", {"ciphertext": "c2hvcnQ="}, b"", "provided ciphertext is too short"),
    (
        "transit/keys/r-new/import",
        {"ciphertext": base64.b64encode(bytes(600)).decode()},
        b"",
        "crypto/rsa: decryption error",
    ),
    (
        "transit/keys/r-new/import",
        {"ciphertext": "$blob"},
        b"x" * 16,
        "error importing key: invalid key size 16 bytes for key type aes256-gcm96",
    ),
    (
        "transit/keys/r-new/import",
        {"ciphertext": "$blob", "type": "hmac"},
        b"x" * 20,
        "error importing key: invalid key size 20 bytes for key type hmac",
    ),
    ("transit/keys/r-new/import", {"ciphertext": "$blob"}, b"x" * 8, "kwp: wrapped key size too small"),
    (
        "transit/keys/r-new/import",
        {"ciphertext": "$blob", "derived": True, "convergent_encryption": True},
        b"x" * 32,
        "import cannot be used on keys with convergent encryption enabled",
    ),
    (
        "transit/keys/r-new/import",
        {"ciphertext": "$blob", "auto_rotate_period": "1h"},
        b"x" * 32,
        "allow_rotation must be set to true if auto-rotation is enabled",
    ),
    (
        "transit/keys/r-exists/import",
        {"ciphertext": "$blob"},
        b"y" * 32,
        "the import path cannot be used with an existing key; "
        "use import-version to rotate an existing imported key",
    ),
    (
        "transit/keys/r-missing/import_version",
        {"ciphertext": "$blob"},
        b"y" * 32,
        "no key found with name r-missing; to import a new key, use the import/ endpoint",
    ),
    (
        "transit/keys/r-exists/import_version",
        {"ciphertext": "$blob", "version": 1},
        b"y" * 32,
        "provided type does not support importing key versions",
    ),
    # r-exists was imported without allow_rotation; r-plain was created (not imported).
    ("transit/keys/r-exists/rotate", {}, b"", "imported key r-exists does not allow rotation within Vault"),
    (
        "transit/keys/r-plain/import_version",
        {"ciphertext": "$blob"},
        b"y" * 32,
        "the import_version endpoint can only be used with an imported key",
    ),
]


def test_what_openbao_refuses_with_a_500_kubekms_refuses_with_a_400_and_its_text(
    openbao: OpenBao, kubekms: KubeKms
) -> None:
    for server in (openbao, kubekms):
        reply = requests.post(
            f"{server.url}/v1/transit/keys/r-exists/import",
            json={"ciphertext": _wrap_for(server, b"z" * 32)},
            headers={"X-Vault-Token": server.token},
            timeout=60,
        )
        assert reply.status_code == 204, (server.name, reply.text)
        plain = requests.post(
            f"{server.url}/v1/transit/keys/r-plain",
            json={},
            headers={"X-Vault-Token": server.token},
            timeout=60,
        )
        assert plain.status_code == 200, (server.name, plain.text)
    for path, body, material, text in REFUSALS:
        for server, status, errors in ((openbao, 500, [_multierror(text)]), (kubekms, 400, [text])):
            sent = {k: (_wrap_for(server, material) if v == "$blob" else v) for k, v in body.items()}
            reply = requests.post(
                f"{server.url}/v1/{path}", json=sent, headers={"X-Vault-Token": server.token}, timeout=60
            )
            assert (reply.status_code, reply.json()["errors"]) == (status, errors), (server.name, path, body)
        assert (
            requests.get(
                f"{kubekms.url}/v1/transit/keys/r-new", headers={"X-Vault-Token": kubekms.token}, timeout=60
            ).status_code
            == 404
        )
