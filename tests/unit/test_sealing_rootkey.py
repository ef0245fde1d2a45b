"""Root-key sealing: AES-256-GCM round trips, AAD binding, tampering and the blob layout."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from kms_core.errors import ConfigError, Unavailable
from kms_core.model import Algorithm
from kms_core.sealing import Sealer, UnsealError, blob_kek_id, material_aad
from kms_core.sealing import blob as blob_format
from kms_core.sealing.rootkey import RootKeySealer

KEY = os.urandom(32)
OTHER_KEY = os.urandom(32)
AAD = material_aad("0b0c7f0e-2d3a-4c5e-9f10-111213141516", 1, Algorithm.AES_256_GCM)


@pytest.fixture
def sealer() -> RootKeySealer:
    return RootKeySealer(KEY)


@pytest.mark.parametrize("size", [0, 1, 32, 1000, 70_000])
def test_round_trip(sealer: RootKeySealer, size: int) -> None:
    plaintext = os.urandom(size)
    sealed = sealer.seal(plaintext, AAD)
    if size >= 16:
        # Shorter plaintexts can occur by chance in random bytes; a 16-byte match cannot.
        assert plaintext not in sealed
    assert sealer.unseal(sealed, AAD) == plaintext


def test_identity_and_protocol(sealer: RootKeySealer) -> None:
    assert isinstance(sealer, Sealer)
    assert sealer.backend == "rootkey"
    assert sealer.kek_id == hashlib.sha256(KEY).digest()[:8].hex()
    assert RootKeySealer(OTHER_KEY).kek_id != sealer.kek_id
    assert KEY.hex() not in repr(sealer)


def test_blob_layout_is_standard_aes_gcm(sealer: RootKeySealer) -> None:
    plaintext = b"material"
    sealed = sealer.seal(plaintext, AAD)
    kek = sealer.kek_id.encode()
    assert sealed[0] == 0x01
    assert sealed[1] == len(kek) == 16
    assert sealed[2:18] == kek
    nonce, ct = sealed[18:30], sealed[30:]
    assert len(ct) == len(plaintext) + 16
    # An independent AES-GCM implementation reads it: the layout is exactly as documented.
    assert AESGCM(KEY).decrypt(nonce, ct, AAD) == plaintext
    assert blob_kek_id(sealed) == sealer.kek_id


def test_nonces_are_fresh(sealer: RootKeySealer) -> None:
    nonces = {blob_format.parse(sealer.seal(b"x", AAD))[1] for _ in range(200)}
    assert len(nonces) == 200


@pytest.mark.parametrize(
    "other_aad",
    [
        material_aad("ffffffff-2d3a-4c5e-9f10-111213141516", 1, Algorithm.AES_256_GCM),
        material_aad("0b0c7f0e-2d3a-4c5e-9f10-111213141516", 2, Algorithm.AES_256_GCM),
        material_aad("0b0c7f0e-2d3a-4c5e-9f10-111213141516", 1, Algorithm.AES_128_GCM),
        b"",
    ],
    ids=["other-key-id", "other-version", "other-algorithm", "no-aad"],
)
def test_aad_binds_blob_to_its_place(sealer: RootKeySealer, other_aad: bytes) -> None:
    sealed = sealer.seal(b"material", AAD)
    with pytest.raises(UnsealError):
        sealer.unseal(sealed, other_aad)


def test_any_bit_flip_is_detected(sealer: RootKeySealer) -> None:
    sealed = sealer.seal(os.urandom(24), AAD)
    for bit in range(len(sealed) * 8):
        tampered = bytearray(sealed)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(UnsealError):
            sealer.unseal(bytes(tampered), AAD)


def test_appended_or_truncated_bytes_are_detected(sealer: RootKeySealer) -> None:
    sealed = sealer.seal(b"material", AAD)
    for bad in (sealed + b"\0", sealed[:-1]):
        with pytest.raises(UnsealError):
            sealer.unseal(bad, AAD)


def test_wrong_root_key_names_both_kek_ids(sealer: RootKeySealer) -> None:
    sealed = sealer.seal(b"material", AAD)
    other = RootKeySealer(OTHER_KEY)
    with pytest.raises(UnsealError) as info:
        other.unseal(sealed, AAD)
    message = str(info.value)
    assert sealer.kek_id in message and other.kek_id in message
    for secret in (KEY, OTHER_KEY):
        assert secret.hex() not in message and base64.b64encode(secret).decode() not in message


def test_forged_kek_id_header_still_fails(sealer: RootKeySealer) -> None:
    # Another key's blob relabelled with our kek_id passes the header check but not GCM.
    forged = blob_format.pack(sealer.kek_id, *blob_format.parse(RootKeySealer(OTHER_KEY).seal(b"m", AAD))[1:])
    with pytest.raises(UnsealError):
        sealer.unseal(forged, AAD)


def _malformed_blobs(kek_id: str) -> list[bytes]:
    header = bytes((1, len(kek_id))) + kek_id.encode()
    blobs: list[bytes] = []
    for length in range(41):
        blobs.append(os.urandom(length))
        blobs.append(bytes(length))
        blobs.append((header + os.urandom(40))[:length])
        blobs.append((bytes((1, 255)) + b"a" * 40)[:length])
        blobs.append((bytes((1, 16)) + "é".encode() * 20)[:length])
    return blobs


def test_malformed_blobs_of_every_length_raise_unseal_error(sealer: RootKeySealer) -> None:
    blobs = _malformed_blobs(sealer.kek_id)
    assert {len(b) for b in blobs} == set(range(41))
    for bad in blobs:
        with pytest.raises(UnsealError):
            sealer.unseal(bad, AAD)
        if len(bad) < 2 + 16 + 12 + 16:
            with pytest.raises(UnsealError):
                blob_kek_id(bad)


@given(st.binary(max_size=120))
def test_arbitrary_bytes_only_ever_raise_unseal_error(data: bytes) -> None:
    with pytest.raises(UnsealError):
        RootKeySealer(KEY).unseal(data, AAD)


def test_pack_refuses_bad_fields() -> None:
    with pytest.raises(ValueError):
        blob_format.pack("NOT-HEX", bytes(12), bytes(16))
    with pytest.raises(ValueError):
        blob_format.pack("ab", bytes(11), bytes(16))
    with pytest.raises(ValueError):
        blob_format.pack("ab", bytes(12), bytes(15))
    assert blob_format.parse(blob_format.pack("ab", bytes(12), b"t" * 16)) == ("ab", bytes(12), b"t" * 16)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        RootKeySealer(os.urandom(size))


def test_from_base64_accepts_a_valid_key() -> None:
    encoded = base64.b64encode(KEY).decode()
    assert RootKeySealer.from_base64(encoded).kek_id == RootKeySealer(KEY).kek_id
    assert RootKeySealer.from_base64(f"  {encoded}\n").kek_id == RootKeySealer(KEY).kek_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("%%%% not base64 !!", "not valid base64"),
        (base64.b64encode(KEY).decode()[:-1], "not valid base64"),
        (base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "not valid base64"),
        ("Zm9vYmFy" + "é", "not valid base64"),
        (base64.b64encode(os.urandom(16)).decode(), "got 16 bytes"),
        (base64.b64encode(os.urandom(48)).decode(), "got 48 bytes"),
    ],
)
def test_from_base64_errors_never_echo_the_value(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        RootKeySealer.from_base64(value)
    message = str(info.value)
    assert expected in message
    assert "ROOT_ENCRYPTION_KEY" in message
    assert value.strip() not in message and value[:8] not in message


def test_close_is_idempotent_and_final(sealer: RootKeySealer) -> None:
    sealed = sealer.seal(b"material", AAD)
    sealer.close()
    sealer.close()
    with pytest.raises(Unavailable):
        sealer.seal(b"material", AAD)
    with pytest.raises(Unavailable):
        sealer.unseal(sealed, AAD)
