"""hvac's transit API drives the key lifecycle on KubeKMS unchanged: rotate, config, read,
encrypt with `key_version`, rewrap, trim, soft deletion and delete — and a Transit delete is the
core's recoverable delete (the key comes back through the Infisical dialect's restore)."""

from __future__ import annotations

import base64

import hvac
import pytest
import requests
from hvac.exceptions import InvalidRequest
from servers import KubeKms

pytestmark = pytest.mark.integration


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_hvac_rotates_configures_rewraps_and_deletes(kubekms: KubeKms) -> None:
    transit = hvac.Client(url=kubekms.url, token=kubekms.token).secrets.transit
    transit.create_key(name="hvac-lc")
    old = transit.encrypt_data(name="hvac-lc", plaintext=b64(b"kept"))["data"]["ciphertext"]
    assert old.startswith("vault:v1:")

    rotated = transit.rotate_key(name="hvac-lc")["data"]
    assert rotated["latest_version"] == 2 and sorted(rotated["keys"]) == ["1", "2"]
    transit.rotate_key(name="hvac-lc")
    read = transit.read_key(name="hvac-lc")["data"]
    assert read["latest_version"] == 3 and all(isinstance(t, int) for t in read["keys"].values())

    pinned = transit.encrypt_data(name="hvac-lc", plaintext=b64(b"pinned"), key_version=2)["data"]
    assert pinned["key_version"] == 2 and pinned["ciphertext"].startswith("vault:v2:")
    with pytest.raises(InvalidRequest, match="higher than the latest key version"):
        transit.encrypt_data(name="hvac-lc", plaintext=b64(b"x"), key_version=4)

    rewrapped = transit.rewrap_data(name="hvac-lc", ciphertext=old)["data"]
    assert rewrapped["ciphertext"].startswith("vault:v3:") and rewrapped["key_version"] == 3
    plaintext = transit.decrypt_data(name="hvac-lc", ciphertext=rewrapped["ciphertext"])["data"]["plaintext"]
    assert base64.b64decode(plaintext) == b"kept"

    configured = transit.update_key_configuration(
        name="hvac-lc", min_decryption_version=2, min_encryption_version=3, auto_rotate_period="24h"
    )["data"]
    assert (configured["min_decryption_version"], configured["min_encryption_version"]) == (2, 3)
    assert configured["auto_rotate_period"] == 86400 and sorted(configured["keys"]) == ["2", "3"]
    with pytest.raises(InvalidRequest, match="disallowed by policy"):
        transit.decrypt_data(name="hvac-lc", ciphertext=old)
    trimmed = transit.trim_key(name="hvac-lc", min_version=2)["data"]
    assert trimmed["min_available_version"] == 2
    decrypted = transit.decrypt_data(name="hvac-lc", ciphertext=pinned["ciphertext"])["data"]["plaintext"]
    assert base64.b64decode(decrypted) == b"pinned"

    with pytest.raises(InvalidRequest, match="deletion is not allowed"):
        transit.delete_key(name="hvac-lc")
    transit.update_key_configuration(name="hvac-lc", deletion_allowed=True)
    assert transit.delete_key(name="hvac-lc").status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name="hvac-lc")

    # The core's recovery window: the key is listed as deleted on the Infisical side and restored
    # with its material and versions, so the pinned ciphertext decrypts again.
    admin = {"Authorization": f"Bearer {kubekms.token}"}
    listed = requests.get(
        f"{kubekms.url}/api/v1/kms/deleted-keys", params={"projectId": "default"}, headers=admin, timeout=10
    ).json()["keys"]
    (deleted,) = [k for k in listed if k["name"] == "hvac-lc"]
    restored = requests.post(
        f"{kubekms.url}/api/v1/kms/deleted-keys/{deleted['id']}/restore", json={}, headers=admin, timeout=10
    )
    assert restored.status_code == 200, restored.text
    again = transit.decrypt_data(name="hvac-lc", ciphertext=pinned["ciphertext"])["data"]["plaintext"]
    assert base64.b64decode(again) == b"pinned"


def test_soft_deletion_is_disabling(kubekms: KubeKms) -> None:
    """OpenBao's soft-delete is Infisical's isDisabled: listed, readable, refused for every use."""
    client = hvac.Client(url=kubekms.url, token=kubekms.token)
    transit = client.secrets.transit
    transit.create_key(name="hvac-soft")
    soft = client.adapter.delete("/v1/transit/keys/hvac-soft/soft-delete")["data"]
    assert soft["soft_deleted"] is True
    infisical = requests.get(
        f"{kubekms.url}/api/v1/kms/keys/key-name/hvac-soft",
        params={"projectId": "default"},
        headers={"Authorization": f"Bearer {kubekms.token}"},
        timeout=10,
    ).json()["key"]
    assert infisical["isDisabled"] is True
    with pytest.raises(InvalidRequest, match="refusing to use soft-deleted key"):
        transit.encrypt_data(name="hvac-soft", plaintext=b64(b"x"))
    with pytest.raises(InvalidRequest, match="refusing to use soft-deleted key"):
        transit.rotate_key(name="hvac-soft")  # OpenBao: a 500 with this text
    assert (
        client.adapter.post("/v1/transit/keys/hvac-soft/soft-delete-restore")["data"]["soft_deleted"] is False
    )
    assert transit.encrypt_data(name="hvac-soft", plaintext=b64(b"x"))["data"]["key_version"] == 1


def test_versions_out_of_range_are_400s_with_openbaos_words(kubekms: KubeKms) -> None:
    """Where OpenBao answers 500 (signing key_version out of range), KubeKMS answers 400."""
    transit = hvac.Client(url=kubekms.url, token=kubekms.token).secrets.transit
    transit.create_key(name="hvac-signer", key_type="ecdsa-p256")
    for version, text in (
        (2, "requested version for signing is higher"),
        (-1, "requested version for signing is negative"),
    ):
        with pytest.raises(InvalidRequest, match=text):
            transit.sign_data(name="hvac-signer", hash_input=b64(b"doc"), key_version=version)


def test_exports_open_with_standard_tools(kubekms: KubeKms) -> None:
    """Exported material is the key itself: an AES export decrypts a Transit ciphertext, an EC
    export's public half is the key's public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    client = hvac.Client(url=kubekms.url, token=kubekms.token)
    transit = client.secrets.transit
    transit.create_key(name="hvac-x", exportable=True)
    ciphertext = transit.encrypt_data(name="hvac-x", plaintext=b64(b"open me"))["data"]["ciphertext"]
    raw = base64.b64decode(transit.export_key(name="hvac-x", key_type="encryption-key")["data"]["keys"]["1"])
    blob = base64.b64decode(ciphertext.removeprefix("vault:v1:"))
    assert AESGCM(raw).decrypt(blob[:12], blob[12:], None) == b"open me"

    transit.create_key(name="hvac-xec", key_type="ecdsa-p384", exportable=True)
    pem = transit.export_key(name="hvac-xec", key_type="signing-key")["data"]["keys"]["1"]
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    public = client.adapter.get("/v1/transit/export/public-key/hvac-xec")["data"]["keys"]["1"]  # not in hvac
    assert (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        .rstrip("\n")
        == public
    )
    with pytest.raises(InvalidRequest, match="private key material is not exportable"):
        transit.create_key(name="hvac-noexport")
        transit.export_key(name="hvac-noexport", key_type="encryption-key")
