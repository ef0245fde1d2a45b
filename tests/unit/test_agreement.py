"""ECDH key agreement (spec §2.18, §5.5): commutativity, secret sizes and peer-key errors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kms_core import material
from kms_core.errors import BadRequest
from kms_core.keyring import Keyring
from kms_core.model import Algorithm as A

SIZES = {A.ECC_NIST_P256: 32, A.ECC_NIST_P384: 48, A.ECC_NIST_P521: 66}
CURVES = {A.ECC_NIST_P256: ec.SECP256R1, A.ECC_NIST_P384: ec.SECP384R1, A.ECC_NIST_P521: ec.SECP521R1}
SUFFIX = ". Expected a DER-encoded SubjectPublicKeyInfo (SPKI) public key."


def ring_for(algorithm: A) -> Keyring:
    return Keyring(algorithm, {1: material.generate(algorithm)}, 1)


def spki(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("algorithm", list(SIZES), ids=lambda a: a.value)
def test_shared_secret_is_commutative_with_expected_size(algorithm: A) -> None:
    alice, bob = ring_for(algorithm), ring_for(algorithm)
    secret = alice.derive_shared_secret(bob.public_key())
    assert len(secret) == SIZES[algorithm]
    assert secret == bob.derive_shared_secret(alice.public_key())
    assert secret != alice.derive_shared_secret(ring_for(algorithm).public_key())


@pytest.mark.parametrize("algorithm", list(SIZES), ids=lambda a: a.value)
def test_secret_matches_an_independent_exchange(algorithm: A) -> None:
    ring = ring_for(algorithm)
    peer = ec.generate_private_key(CURVES[algorithm]())
    ours = serialization.load_der_public_key(ring.public_key())
    assert isinstance(ours, ec.EllipticCurvePublicKey)
    assert ring.derive_shared_secret(spki(peer)) == peer.exchange(ec.ECDH(), ours)


def invalid(ring: Keyring, peer: bytes) -> str:
    with pytest.raises(BadRequest) as info:
        ring.derive_shared_secret(peer)
    message = info.value.message
    assert message.startswith("Invalid public key: ")
    assert message.endswith(SUFFIX)
    return message


@pytest.mark.parametrize("peer", [b"", b"not a key", b"\x30\x03\x02\x01\x01"])
def test_malformed_public_key_message(peer: bytes) -> None:
    message = invalid(ring_for(A.ECC_NIST_P256), peer)
    assert "ASN.1" in message or "parsing" in message


def test_key_on_another_curve_is_refused() -> None:
    message = invalid(ring_for(A.ECC_NIST_P256), ring_for(A.ECC_NIST_P384).public_key())
    assert "secp384r1" in message and "secp256r1" in message


def test_non_ec_key_is_refused() -> None:
    message = invalid(ring_for(A.ECC_NIST_P521), spki(ed25519.Ed25519PrivateKey.generate()))
    assert "not an elliptic-curve key" in message


def test_point_not_on_curve_is_refused() -> None:
    der = bytearray(ring_for(A.ECC_NIST_P256).public_key())
    der[-1] ^= 0x01  # the y coordinate no longer matches x
    invalid(ring_for(A.ECC_NIST_P256), bytes(der))


def test_error_never_contains_key_material() -> None:
    ring = ring_for(A.ECC_NIST_P256)
    secret_der = ring.export_private()
    message = invalid(ring, b"\x30\x82\x01\x00garbage")
    assert secret_der.decode() not in message
    assert "PRIVATE" not in message


def test_signing_key_cannot_agree() -> None:
    with pytest.raises(TypeError):
        ring_for(A.ECC_NIST_ED25519).derive_shared_secret(ring_for(A.ECC_NIST_P256).public_key())
