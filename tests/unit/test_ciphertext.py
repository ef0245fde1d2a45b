"""The ciphertext wire layout (spec §5.1): pack/unpack, known-answer blobs and rotation.

Known-answer blobs are built by hand with `cryptography`'s AESGCM (not with our Aead) so the
keyring is checked against the layout the spec describes, not against itself.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_core import ciphertext
from kms_core.errors import DecryptionFailed
from kms_core.keyring import Keyring
from kms_core.model import Algorithm

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
KEY_3 = bytes(range(64, 96))
IV = bytes.fromhex("000102030405060708090a0b")
PT = b"hello, kubekms"


def hand_v01(key: bytes, plaintext: bytes) -> bytes:
    return IV + AESGCM(key).encrypt(IV, plaintext, None) + b"v01"


def hand_v02(key: bytes, plaintext: bytes, version: int) -> bytes:
    return IV + AESGCM(key).encrypt(IV, plaintext, None) + version.to_bytes(4, "big") + b"v02"


# -- pack / unpack -----------------------------------------------------------------------------


def test_pack_version_1_appends_v01() -> None:
    assert ciphertext.pack(b"raw", 1) == b"rawv01"


def test_pack_later_versions_append_big_endian_version_and_v02() -> None:
    assert ciphertext.pack(b"raw", 2) == b"raw\x00\x00\x00\x02v02"
    assert ciphertext.pack(b"raw", 0x01020304) == b"raw\x01\x02\x03\x04v02"


@pytest.mark.parametrize("version", [0, -1, 2**32])
def test_pack_rejects_versions_outside_uint32(version: int) -> None:
    with pytest.raises(ValueError):
        ciphertext.pack(b"raw", version)


def test_unpack_v02_reads_version_when_long_enough() -> None:
    raw = os.urandom(28)
    assert ciphertext.unpack(raw + (7).to_bytes(4, "big") + b"v02") == (raw, 7)


def test_unpack_short_v02_suffix_is_treated_as_legacy() -> None:
    # 34 bytes ending in "v02" is below the 35-byte minimum: strip 3 bytes, no version.
    blob = os.urandom(31) + b"v02"
    assert ciphertext.unpack(blob) == (blob[:-3], None)


def test_unpack_strips_any_other_suffix_unchecked() -> None:
    assert ciphertext.unpack(b"abcdefXYZ") == (b"abcdef", None)
    assert ciphertext.unpack(b"abcdefv01") == (b"abcdef", None)


def test_unpack_of_tiny_blobs_gives_empty_raw() -> None:
    assert ciphertext.unpack(b"") == (b"", None)
    assert ciphertext.unpack(b"v0") == (b"", None)


@pytest.mark.parametrize("version", [1, 2, 3, 255, 2**32 - 1])
def test_pack_unpack_round_trip(version: int) -> None:
    raw = os.urandom(40)
    assert ciphertext.unpack(ciphertext.pack(raw, version)) == (raw, None if version == 1 else version)


# -- known answers through the keyring -----------------------------------------------------------


def test_hand_made_v01_blob_decrypts() -> None:
    blob = hand_v01(KEY_1, PT)
    assert len(blob) == len(PT) + 31
    assert Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1).decrypt(blob) == PT


def test_hand_made_v02_blob_decrypts() -> None:
    blob = hand_v02(KEY_2, PT, 2)
    assert len(blob) == len(PT) + 35
    ring = Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2}, 2)
    assert ring.decrypt(blob) == PT


def test_aes_128_known_answer() -> None:
    key = bytes(range(16))
    assert Keyring(Algorithm.AES_128_GCM, {1: key}, 1).decrypt(hand_v01(key, PT)) == PT


def test_version_1_key_produces_v01_blobs_decryptable_by_hand() -> None:
    blob = Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1).encrypt(PT)
    assert len(blob) == len(PT) + 31
    assert blob.endswith(b"v01")
    assert AESGCM(KEY_1).decrypt(blob[:12], blob[12:-3], None) == PT


def test_rotated_key_produces_v02_blobs_decryptable_by_hand() -> None:
    blob = Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2}, 2).encrypt(PT)
    assert len(blob) == len(PT) + 35
    assert blob.endswith(b"\x00\x00\x00\x02v02")
    assert AESGCM(KEY_2).decrypt(blob[:12], blob[12:-7], None) == PT


def test_empty_plaintext_layouts() -> None:
    assert len(Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1).encrypt(b"")) == 31
    ring = Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2}, 2)
    blob = ring.encrypt(b"")
    assert len(blob) == 35
    assert ring.decrypt(blob) == b""


def test_v01_blob_made_before_rotation_decrypts_with_three_versions() -> None:
    before = Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1).encrypt(PT)
    after = Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2, 3: KEY_3}, 3)
    assert after.decrypt(before) == PT


def test_three_generations_all_decrypt() -> None:
    blobs = [
        Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1).encrypt(b"gen1"),
        Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2}, 2).encrypt(b"gen2"),
        Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2, 3: KEY_3}, 3).encrypt(b"gen3"),
    ]
    ring = Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2, 3: KEY_3}, 3)
    assert [ring.decrypt(b) for b in blobs] == [b"gen1", b"gen2", b"gen3"]


def test_wrong_embedded_version_still_decrypts_by_trying_others() -> None:
    # The trailer is only a hint: a v02 blob claiming version 3 but sealed with version 1 opens.
    blob = hand_v02(KEY_1, PT, 3)
    ring = Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2, 3: KEY_3}, 3)
    assert ring.decrypt(blob) == PT


def test_unknown_embedded_version_falls_back_to_known_versions() -> None:
    blob = hand_v02(KEY_2, PT, 9)
    assert Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2}, 2).decrypt(blob) == PT


def test_blob_of_another_key_is_rejected() -> None:
    blob = hand_v01(KEY_3, PT)
    with pytest.raises(DecryptionFailed) as info:
        Keyring(Algorithm.AES_256_GCM, {1: KEY_1, 2: KEY_2}, 2).decrypt(blob)
    assert info.value.message == "Ciphertext cannot be decrypted with this KMS key."


def test_newer_version_material_is_not_used_by_an_older_keyring() -> None:
    blob = hand_v02(KEY_2, PT, 2)
    with pytest.raises(DecryptionFailed):
        Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1).decrypt(blob)


def test_two_encryptions_differ() -> None:
    ring = Keyring(Algorithm.AES_256_GCM, {1: KEY_1}, 1)
    assert ring.encrypt(PT) != ring.encrypt(PT)
