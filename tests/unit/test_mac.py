"""HMAC keys (spec §2.17, §5.4), checked against Python's `hmac` module."""

from __future__ import annotations

import hmac
import os

import pytest

from kms_core import material
from kms_core.keyring import Keyring
from kms_core.model import Algorithm as A
from kms_core.primitives.mac import Hmac

HASHES = {
    A.HMAC_SHA_1: ("sha1", 20),
    A.HMAC_SHA_224: ("sha224", 28),
    A.HMAC_SHA_256: ("sha256", 32),
    A.HMAC_SHA_384: ("sha384", 48),
    A.HMAC_SHA_512: ("sha512", 64),
}
DATA = b"message to authenticate"


@pytest.mark.parametrize("algorithm", list(HASHES), ids=lambda a: a.value)
def test_mac_equals_python_hmac(algorithm: A) -> None:
    key = material.generate(algorithm)
    name, size = HASHES[algorithm]
    assert len(key) == size
    ring = Keyring(algorithm, {1: key}, 1)
    mac = ring.generate_mac(DATA)
    assert mac == hmac.new(key, DATA, name).digest()
    assert len(mac) == size
    assert ring.verify_mac(DATA, mac)
    assert not ring.verify_mac(DATA + b"!", mac)
    assert not ring.verify_mac(DATA, mac[:-1])
    assert not ring.verify_mac(DATA, mac + b"\x00")


def test_31_byte_mac_is_false_for_hmac_sha_256() -> None:
    ring = Keyring(A.HMAC_SHA_256, {1: material.generate(A.HMAC_SHA_256)}, 1)
    mac = ring.generate_mac(DATA)
    assert ring.verify_mac(DATA, mac[:31]) is False
    assert ring.verify_mac(DATA, b"") is False


def test_flipped_bit_is_false() -> None:
    ring = Keyring(A.HMAC_SHA_512, {1: material.generate(A.HMAC_SHA_512)}, 1)
    mac = bytearray(ring.generate_mac(DATA))
    mac[10] ^= 0x80
    assert ring.verify_mac(DATA, bytes(mac)) is False


def test_imported_key_of_any_allowed_length_works() -> None:
    key = os.urandom(100)  # bulk import allows 16..1024 bytes
    ring = Keyring(A.HMAC_SHA_384, {1: material.parse_import(A.HMAC_SHA_384, key)}, 1)
    assert ring.generate_mac(DATA) == hmac.new(key, DATA, "sha384").digest()


def test_mac_is_deterministic_and_key_dependent() -> None:
    first = Hmac(A.HMAC_SHA_256, b"k" * 32)
    assert first.generate(DATA) == first.generate(DATA)
    assert first.generate(DATA) != Hmac(A.HMAC_SHA_256, b"j" * 32).generate(DATA)


def test_non_hmac_algorithm_and_empty_key_are_refused() -> None:
    with pytest.raises(ValueError):
        Hmac(A.AES_256_GCM, b"k" * 32)
    with pytest.raises(ValueError):
        Hmac(A.HMAC_SHA_256, b"")


def test_aes_keyring_has_no_mac() -> None:
    with pytest.raises(TypeError):
        Keyring(A.AES_256_GCM, {1: os.urandom(32)}, 1).generate_mac(DATA)
