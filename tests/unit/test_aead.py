"""AES-GCM (`Aead`) and RSA-OAEP encryption (`RsaOaep`, the RSA_4096 keyring).

RSA-OAEP ciphertexts are checked with the `openssl` CLI, an implementation independent of ours.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_core import material
from kms_core.errors import BadRequest, DecryptionFailed
from kms_core.keyring import Keyring
from kms_core.model import Algorithm
from kms_core.primitives.aead import Aead

KEY = os.urandom(32)


# -- AES-GCM -----------------------------------------------------------------------------------


def test_layout_is_iv_ct_tag_readable_by_aesgcm() -> None:
    data = Aead(KEY).encrypt(b"secret")
    assert len(data) == 6 + 28
    assert AESGCM(KEY).decrypt(data[:12], data[12:], None) == b"secret"


def test_round_trip_and_random_iv() -> None:
    aead = Aead(KEY)
    first, second = aead.encrypt(b"x" * 100), aead.encrypt(b"x" * 100)
    assert first[:12] != second[:12]
    assert aead.decrypt(first) == aead.decrypt(second) == b"x" * 100


def test_no_aad_is_used() -> None:
    iv = os.urandom(12)
    with_aad = iv + AESGCM(KEY).encrypt(iv, b"m", b"aad")
    with pytest.raises(DecryptionFailed):
        Aead(KEY).decrypt(with_aad)


@pytest.mark.parametrize("size", [0, 1, 12, 27])
def test_short_input_is_decryption_failed(size: int) -> None:
    with pytest.raises(DecryptionFailed):
        Aead(KEY).decrypt(os.urandom(size))


def test_wrong_key_is_decryption_failed_without_cause() -> None:
    data = Aead(KEY).encrypt(b"m")
    with pytest.raises(DecryptionFailed) as info:
        Aead(os.urandom(32)).decrypt(data)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize("size", [0, 15, 24, 31, 33])
def test_invalid_key_sizes_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match=str(size)):
        Aead(b"k" * size)


def test_aes_keyring_rejects_material_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        Keyring(Algorithm.AES_256_GCM, {1: b"k" * 7}, 1)


def test_keyring_requires_current_version_material() -> None:
    with pytest.raises(ValueError, match="current version 2"):
        Keyring(Algorithm.AES_256_GCM, {1: KEY}, 2)


def test_keyring_repr_hides_material() -> None:
    ring = Keyring(Algorithm.AES_256_GCM, {1: KEY}, 1)
    assert KEY.hex() not in repr(ring)
    assert "aes-256-gcm" in repr(ring)


# -- RSA-OAEP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_ring(rsa_4096_material: bytes) -> Keyring:
    return Keyring(Algorithm.RSA_4096, {1: rsa_4096_material}, 1)


@pytest.fixture(scope="module")
def rsa_pem(rsa_4096_material: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rsa") / "key.pem"
    path.write_bytes(material.export_private(Algorithm.RSA_4096, rsa_4096_material))
    return path


def openssl_oaep_decrypt(key_pem: Path, raw: bytes, tmp_path: Path) -> bytes:
    (tmp_path / "ct.bin").write_bytes(raw)
    result = subprocess.run(
        ["openssl", "pkeyutl", "-decrypt", "-inkey", str(key_pem), "-in", str(tmp_path / "ct.bin"),
         "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
         "-pkeyopt", "rsa_mgf1_md:sha256"],
        capture_output=True, check=True,
    )  # fmt: skip
    return result.stdout


def test_rsa_ciphertext_is_512_bytes_plus_v01_and_decrypts_with_openssl(
    rsa_ring: Keyring, rsa_pem: Path, tmp_path: Path
) -> None:
    blob = rsa_ring.encrypt(b"wrap me")
    assert len(blob) == 515
    assert blob.endswith(b"v01")
    assert openssl_oaep_decrypt(rsa_pem, blob[:-3], tmp_path) == b"wrap me"
    assert rsa_ring.decrypt(blob) == b"wrap me"


def test_rsa_decrypts_independent_oaep_sha256_ciphertext(rsa_ring: Keyring) -> None:
    public = serialization.load_der_public_key(rsa_ring.public_key())
    assert isinstance(public, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert rsa_ring.decrypt(public.encrypt(b"from outside", oaep) + b"v01") == b"from outside"


def test_rsa_oaep_sha1_ciphertext_is_rejected(rsa_ring: Keyring) -> None:
    public = serialization.load_der_public_key(rsa_ring.public_key())
    assert isinstance(public, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    with pytest.raises(DecryptionFailed):
        rsa_ring.decrypt(public.encrypt(b"m", oaep) + b"v01")


def test_rsa_plaintext_limit_is_446_bytes(rsa_ring: Keyring) -> None:
    assert rsa_ring.decrypt(rsa_ring.encrypt(b"a" * 446)) == b"a" * 446
    with pytest.raises(BadRequest) as info:
        rsa_ring.encrypt(b"a" * 447)
    assert info.value.message == "Plaintext exceeds the 446-byte limit for RSA-4096 OAEP-SHA256 encryption."


@pytest.mark.parametrize("mutate", ["flip", "truncate", "extend", "empty"])
def test_rsa_tampered_ciphertext_is_decryption_failed(rsa_ring: Keyring, mutate: str) -> None:
    blob = bytearray(rsa_ring.encrypt(b"m"))
    if mutate == "flip":
        blob[100] ^= 0x01
    elif mutate == "truncate":
        del blob[0]
    elif mutate == "extend":
        blob[-3:-3] = b"\x00"
    else:
        blob = bytearray()
    with pytest.raises(DecryptionFailed):
        rsa_ring.decrypt(bytes(blob))
