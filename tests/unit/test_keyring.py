"""The Keyring: one object per key with every version loaded, shared across threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization

from kms_core import material
from kms_core.errors import BadRequest, DecryptionFailed
from kms_core.keyring import Keyring
from kms_core.model import Algorithm as A
from kms_core.model import SigningAlgorithm as S
from kms_core.sealing.rootkey import RootKeySealer

KEY_ID = "0b6f7a2e-4d1c-4f7e-8a55-2f6c9d1e3b40"
FAST = [a for a in A if a is not A.RSA_4096]


def ring_for(algorithm: A) -> Keyring:
    return Keyring(algorithm, {1: material.generate(algorithm)}, 1)


@pytest.mark.parametrize("algorithm", FAST, ids=lambda a: a.value)
def test_every_algorithm_builds_and_reports_speed(algorithm: A) -> None:
    ring = ring_for(algorithm)
    assert ring.algorithm is algorithm
    assert ring.current_version == 1
    assert ring.is_slow is algorithm.value.startswith(("ML_DSA", "RSA_"))


def test_rsa_is_slow_and_serves_both_encryption_and_signing(rsa_4096_material: bytes) -> None:
    ring = Keyring(A.RSA_4096, {1: rsa_4096_material}, 1)
    assert ring.is_slow
    assert ring.decrypt(ring.encrypt(b"m")) == b"m"
    assert ring.verify(S.RSASSA_PSS_SHA_512, b"m", ring.sign(S.RSASSA_PSS_SHA_512, b"m", False), False)


@pytest.mark.parametrize(
    "algorithm", [A.ECC_NIST_P256, A.ECC_NIST_P521, A.ECC_NIST_ED25519, A.ML_DSA_44], ids=lambda a: a.value
)
def test_public_key_is_spki_of_the_material(algorithm: A) -> None:
    raw = material.generate(algorithm)
    expected = (
        serialization.load_der_private_key(raw, None)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert Keyring(algorithm, {1: raw}, 1).public_key() == expected


def test_keyring_built_from_sealed_versions(rsa_4096_material: bytes) -> None:
    sealer = RootKeySealer(os.urandom(32))
    sealed = {v: material.mint(KEY_ID, v, A.AES_128_GCM, sealer) for v in (1, 2, 3)}
    old = Keyring(A.AES_128_GCM, {1: material.unseal(KEY_ID, 1, A.AES_128_GCM, sealed[1], sealer)}, 1)
    blob = old.encrypt(b"before rotation")
    ring = Keyring(
        A.AES_128_GCM, {v: material.unseal(KEY_ID, v, A.AES_128_GCM, s, sealer) for v, s in sealed.items()}, 3
    )
    assert ring.decrypt(blob) == b"before rotation"
    assert ring.encrypt(b"x").endswith(b"\x00\x00\x00\x03v02")


def test_usage_mismatch_is_a_programming_error() -> None:
    aes, hmac_ring, ec = ring_for(A.AES_256_GCM), ring_for(A.HMAC_SHA_256), ring_for(A.ECC_NIST_P256)
    calls = [
        lambda: ec.encrypt(b"m"),
        lambda: ec.decrypt(b"m" * 40),
        lambda: hmac_ring.encrypt(b"m"),
        lambda: aes.public_key(),
        lambda: aes.derive_shared_secret(ec.public_key()),
        lambda: ec.generate_mac(b"m"),
        lambda: ec.verify_mac(b"m", b"mac"),
        lambda: hmac_ring.sign(S.ECDSA_SHA_256, b"m", False),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            call()


def test_attributes_are_read_only() -> None:
    ring = ring_for(A.AES_256_GCM)
    with pytest.raises(AttributeError):
        ring.current_version = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ring.extra = 1  # type: ignore[attr-defined]


def test_later_changes_to_the_materials_dict_do_not_affect_the_keyring() -> None:
    materials = {1: os.urandom(32)}
    ring = Keyring(A.AES_256_GCM, materials, 1)
    blob = ring.encrypt(b"m")
    materials[1] = os.urandom(32)
    assert ring.decrypt(blob) == b"m"


def test_shared_keyring_is_thread_safe() -> None:
    ring = Keyring(A.AES_256_GCM, {1: os.urandom(32), 2: os.urandom(32)}, 2)
    ed = ring_for(A.ECC_NIST_ED25519)

    def work(i: int) -> bool:
        data = i.to_bytes(4, "big") * 8
        sig = ed.sign(S.ED25519_PH_SHA_512, bytes(64 - 1) + bytes([i % 256]), True)
        ok = ed.verify(S.ED25519_PH_SHA_512, bytes(64 - 1) + bytes([i % 256]), sig, True)
        return ring.decrypt(ring.encrypt(data)) == data and ok

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(400)))


def test_errors_carry_no_material() -> None:
    key = os.urandom(32)
    ring = Keyring(A.AES_256_GCM, {1: key}, 1)
    with pytest.raises(DecryptionFailed) as info:
        ring.decrypt(b"\x00" * 50)
    assert key.hex() not in str(info.value) and key.hex() not in repr(info.value)
    with pytest.raises(BadRequest) as bad:
        ring_for(A.ECC_NIST_P256).sign(S.RSASSA_PSS_SHA_256, b"m", False)
    assert "PRIVATE" not in bad.value.message
