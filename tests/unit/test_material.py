"""Key material: generation sizes, sealing, bulk-import parsing (spec §2.15) and export (§2.13)."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from kms_core import material
from kms_core.errors import BadRequest
from kms_core.keyring import Keyring
from kms_core.model import Algorithm as A
from kms_core.sealing.base import UnsealError
from kms_core.sealing.rootkey import RootKeySealer

KEY_ID = "6f1c1b1e-8a50-4c3e-9a43-1f2b3c4d5e6f"
NO_ENC = serialization.NoEncryption()
PKCS8 = serialization.PrivateFormat.PKCS8
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def sealer() -> RootKeySealer:
    return RootKeySealer(os.urandom(32))


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(PEM, PKCS8, NO_ENC)


def rejected(algorithm: A, data: bytes) -> str:
    with pytest.raises(BadRequest) as info:
        material.parse_import(algorithm, data)
    return info.value.message


# -- generation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "size"),
    [(A.AES_256_GCM, 32), (A.AES_128_GCM, 16), (A.HMAC_SHA_1, 20), (A.HMAC_SHA_224, 28),
     (A.HMAC_SHA_256, 32), (A.HMAC_SHA_384, 48), (A.HMAC_SHA_512, 64)],
)  # fmt: skip
def test_symmetric_sizes_and_randomness(algorithm: A, size: int) -> None:
    first, second = material.generate(algorithm), material.generate(algorithm)
    assert len(first) == len(second) == size
    assert first != second


def test_rsa_is_4096_bit_with_e_65537(rsa_4096_material: bytes) -> None:
    key = serialization.load_der_private_key(rsa_4096_material, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 4096
    assert key.public_key().public_numbers().e == 65537


@pytest.mark.parametrize(
    ("algorithm", "curve"),
    [(A.ECC_NIST_P256, "secp256r1"), (A.ECC_NIST_P384, "secp384r1"), (A.ECC_NIST_P521, "secp521r1")],
)
def test_ec_material_is_pkcs8_der_on_the_curve(algorithm: A, curve: str) -> None:
    key = serialization.load_der_private_key(material.generate(algorithm), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == curve


def test_ed25519_and_ml_dsa_material_types() -> None:
    assert isinstance(serialization.load_der_private_key(material.generate(A.ECC_NIST_ED25519), None),
                      ed25519.Ed25519PrivateKey)  # fmt: skip
    for algorithm, cls in [(A.ML_DSA_44, mldsa.MLDSA44PrivateKey), (A.ML_DSA_65, mldsa.MLDSA65PrivateKey),
                           (A.ML_DSA_87, mldsa.MLDSA87PrivateKey)]:  # fmt: skip
        assert isinstance(serialization.load_der_private_key(material.generate(algorithm), None), cls)


# -- sealing -------------------------------------------------------------------------------------


def test_mint_returns_sealed_material_that_unseals_into_a_working_keyring(sealer: RootKeySealer) -> None:
    sealed = material.mint(KEY_ID, 1, A.AES_256_GCM, sealer)
    raw = material.unseal(KEY_ID, 1, A.AES_256_GCM, sealed, sealer)
    assert len(raw) == 32
    assert raw not in sealed
    ring = Keyring(A.AES_256_GCM, {1: raw}, 1)
    assert ring.decrypt(ring.encrypt(b"m")) == b"m"


def test_sealed_material_is_bound_to_key_version_and_algorithm(sealer: RootKeySealer) -> None:
    raw = material.generate(A.HMAC_SHA_256)
    sealed = material.seal(KEY_ID, 2, A.HMAC_SHA_256, raw, sealer)
    assert material.unseal(KEY_ID, 2, A.HMAC_SHA_256, sealed, sealer) == raw
    for key_id, version, algorithm in [
        ("00000000-0000-4000-8000-000000000000", 2, A.HMAC_SHA_256),
        (KEY_ID, 1, A.HMAC_SHA_256),
        (KEY_ID, 2, A.HMAC_SHA_512),
    ]:
        with pytest.raises(UnsealError):
            material.unseal(key_id, version, algorithm, sealed, sealer)


def test_mint_of_asymmetric_key_under_another_root_key_fails(sealer: RootKeySealer) -> None:
    sealed = material.mint(KEY_ID, 1, A.ECC_NIST_P256, sealer)
    with pytest.raises(UnsealError):
        material.unseal(KEY_ID, 1, A.ECC_NIST_P256, sealed, RootKeySealer(os.urandom(32)))


# -- import --------------------------------------------------------------------------------------


def test_aes_import_requires_exact_length() -> None:
    key = os.urandom(32)
    assert material.parse_import(A.AES_256_GCM, key) == key
    assert (
        rejected(A.AES_256_GCM, key[:31])
        == "Invalid key material length for aes-256-gcm. Expected 32 bytes, got 31."
    )
    assert (
        rejected(A.AES_128_GCM, key)
        == "Invalid key material length for aes-128-gcm. Expected 16 bytes, got 32."
    )
    assert material.parse_import(A.AES_128_GCM, key[:16]) == key[:16]


@pytest.mark.parametrize(("size", "ok"), [(15, False), (16, True), (64, True), (1024, True), (1025, False)])
def test_hmac_import_accepts_16_to_1024_bytes(size: int, ok: bool) -> None:
    key = os.urandom(size)
    if ok:
        assert material.parse_import(A.HMAC_SHA_256, key) == key
    else:
        assert rejected(A.HMAC_SHA_256, key) == (
            f"Invalid HMAC key material length. Expected between 16 and 1024 bytes, got {size}."
        )


def test_rsa_pem_import_round_trips_to_the_same_der(rsa_4096_material: bytes) -> None:
    exported = material.export_private(A.RSA_4096, rsa_4096_material)
    assert material.parse_import(A.RSA_4096, exported) == rsa_4096_material


@pytest.mark.parametrize("algorithm", [A.ECC_NIST_P256, A.ECC_NIST_P384, A.ECC_NIST_P521, A.ECC_NIST_ED25519])
def test_ec_and_ed25519_pem_import_gives_a_working_keyring(algorithm: A) -> None:
    original = Keyring(algorithm, {1: material.generate(algorithm)}, 1)
    imported = material.parse_import(algorithm, original.export_private())
    assert Keyring(algorithm, {1: imported}, 1).public_key() == original.public_key()


INVALID_PEM = "Invalid private key material. Expected a PKCS8 PEM-encoded private key."


def test_unusable_pem_inputs_are_invalid(rsa_4096_material: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    traditional = key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL, NO_ENC)
    encrypted = key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"pw"))
    encrypted_sec1 = key.private_bytes(
        PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw")
    )
    der = key.private_bytes(DER, PKCS8, NO_ENC)
    public = key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    broken = pem(key).replace(b"M", b"A", 3)
    broken_sec1 = traditional.replace(b"M", b"A", 3)
    for data in (encrypted, encrypted_sec1, der, public, broken, broken_sec1, b"", b"garbage"):
        assert rejected(A.ECC_NIST_P256, data) == INVALID_PEM, data[:40]
    assert rejected(A.RSA_4096, rsa_4096_material) == INVALID_PEM  # DER where PEM is expected
    assert material.parse_import(A.ECC_NIST_P256, traditional) == key.private_bytes(DER, PKCS8, NO_ENC)


def test_openssl_pkcs1_rsa_pem_is_accepted_and_stored_as_pkcs8_der(openssl_keys: dict[str, bytes]) -> None:
    data = openssl_keys["rsa-pkcs1"]
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    stored = material.parse_import(A.RSA_4096, data)
    key = serialization.load_pem_private_key(data, None)
    assert stored == key.private_bytes(DER, PKCS8, NO_ENC)  # normalised: PKCS#8 DER, not the PEM
    ring = Keyring(A.RSA_4096, {1: stored}, 1)
    spki = key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ring.public_key() == spki
    assert material.export_private(A.RSA_4096, stored).startswith(b"-----BEGIN PRIVATE KEY-----\n")


@pytest.mark.parametrize(
    ("curve", "algorithm"),
    [("prime256v1", A.ECC_NIST_P256), ("secp384r1", A.ECC_NIST_P384), ("secp521r1", A.ECC_NIST_P521)],
)
def test_openssl_sec1_ec_pem_is_accepted_and_stored_as_pkcs8_der(
    openssl_keys: dict[str, bytes], curve: str, algorithm: A
) -> None:
    data = openssl_keys[f"ec-{curve}"]
    assert data.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    stored = material.parse_import(algorithm, data)
    key = serialization.load_pem_private_key(data, None)
    assert stored == key.private_bytes(DER, PKCS8, NO_ENC)
    assert Keyring(algorithm, {1: stored}, 1).public_key() == key.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other = A.ECC_NIST_P384 if algorithm is A.ECC_NIST_P256 else A.ECC_NIST_P256
    assert rejected(other, data).startswith("Key material does not match the declared algorithm.")


# -- weak material -------------------------------------------------------------------------------

WEAK_RSA = "RSA key public exponent must be odd, at least 65,537, and less than 2^256."
ALL_ZERO = "Invalid key material. An all-zero key is not allowed."


def test_rsa_with_public_exponent_3_is_refused(openssl_keys: dict[str, bytes]) -> None:
    data = openssl_keys["rsa-e3"]
    key = serialization.load_pem_private_key(data, None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.public_key().public_numbers().e == 3
    assert key.key_size == 4096  # the size is right: only the exponent is refused
    assert rejected(A.RSA_4096, data) == WEAK_RSA
    traditional = key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL, NO_ENC)
    assert rejected(A.RSA_4096, traditional) == WEAK_RSA  # whatever the PEM form


@pytest.mark.parametrize("algorithm", [A.AES_256_GCM, A.AES_128_GCM])
def test_all_zero_aes_keys_are_refused(algorithm: A) -> None:
    size = 32 if algorithm is A.AES_256_GCM else 16
    assert rejected(algorithm, bytes(size)) == ALL_ZERO
    almost = bytes(size - 1) + b"\x01"  # one set bit is enough: the check is for placeholders
    assert material.parse_import(algorithm, almost) == almost


@pytest.mark.parametrize("size", [16, 32, 1024])
def test_all_zero_hmac_keys_are_refused(size: int) -> None:
    assert rejected(A.HMAC_SHA_256, bytes(size)) == ALL_ZERO
    assert rejected(A.HMAC_SHA_512, bytes(size)) == ALL_ZERO
    assert material.parse_import(A.HMAC_SHA_256, b"\x80" + bytes(size - 1)) == b"\x80" + bytes(size - 1)


def test_length_is_reported_before_all_zero() -> None:
    assert rejected(A.AES_256_GCM, bytes(31)).startswith("Invalid key material length")
    assert rejected(A.HMAC_SHA_256, bytes(8)).startswith("Invalid HMAC key material length")


def test_declared_algorithm_must_match() -> None:
    p256 = pem(ec.generate_private_key(ec.SECP256R1()))
    prefix = "Key material does not match the declared algorithm. Expected "
    assert rejected(A.RSA_4096, p256) == prefix + "an RSA 4096-bit key."
    rsa_2048 = pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert rejected(A.RSA_4096, rsa_2048) == prefix + "an RSA 4096-bit key."
    assert rejected(A.ECC_NIST_P384, p256) == prefix + "an EC P-384 key."
    assert rejected(A.ECC_NIST_P521, p256) == prefix + "an EC P-521 key."
    assert (
        rejected(A.ECC_NIST_P256, pem(ec.generate_private_key(ec.SECP521R1()))) == prefix + "an EC P-256 key."
    )
    assert rejected(A.ECC_NIST_ED25519, p256) == prefix + "an Ed25519 key."
    assert rejected(A.ECC_NIST_P256, pem(ed25519.Ed25519PrivateKey.generate())) == prefix + "an EC P-256 key."


def test_ml_dsa_import_is_pkcs8_der() -> None:
    der = material.generate(A.ML_DSA_65)
    assert material.parse_import(A.ML_DSA_65, der) == der
    as_pem = serialization.load_der_private_key(der, None).private_bytes(PEM, PKCS8, NO_ENC)
    invalid_der = "Invalid private key material. Expected a PKCS8 DER-encoded private key."
    assert rejected(A.ML_DSA_65, as_pem) == invalid_der
    assert rejected(A.ML_DSA_65, b"\x30\x03garbage") == invalid_der
    prefix = "Key material does not match the declared algorithm. Expected ML_DSA_65 but the key is "
    assert rejected(A.ML_DSA_65, material.generate(A.ML_DSA_44)) == prefix + "ML_DSA_44."
    assert rejected(A.ML_DSA_65, material.generate(A.ECC_NIST_P256)) == prefix + "ECC_NIST_P256."


def test_import_errors_never_echo_material() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = pem(key)
    message = rejected(A.ECC_NIST_P384, data)
    body = b"".join(data.splitlines()[1:-1]).decode()
    assert body[:16] not in message
    secret = os.urandom(31)
    assert secret.hex() not in rejected(A.AES_256_GCM, secret)


# -- export --------------------------------------------------------------------------------------


def test_export_formats(rsa_4096_material: bytes) -> None:
    exported = material.export_private(A.RSA_4096, rsa_4096_material)
    assert exported.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert exported.endswith(b"-----END PRIVATE KEY-----\n")
    aes = os.urandom(32)
    assert material.export_private(A.AES_256_GCM, aes) == aes
    hmac_key = os.urandom(48)
    assert material.export_private(A.HMAC_SHA_384, hmac_key) == hmac_key
    ml = material.generate(A.ML_DSA_87)
    exported_ml = material.export_private(A.ML_DSA_87, ml)
    assert isinstance(serialization.load_der_private_key(exported_ml, None), mldsa.MLDSA87PrivateKey)
    ed = material.export_private(A.ECC_NIST_ED25519, material.generate(A.ECC_NIST_ED25519))
    assert isinstance(serialization.load_pem_private_key(ed, None), ed25519.Ed25519PrivateKey)


def test_keyring_exports_current_version_only() -> None:
    old, new = os.urandom(32), os.urandom(32)
    assert Keyring(A.AES_256_GCM, {1: old, 2: new}, 2).export_private() == new
