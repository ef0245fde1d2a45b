"""Signatures (spec §2.11, §2.12, §5.2), checked by implementations independent of ours.

RSA and ECDSA signatures are verified with `openssl dgst`, Ed25519 with `openssl pkeyutl -rawin`,
Ed25519ph and ML-DSA with pycryptodome; signatures made by those tools are verified by ours.
Every argument-error message of the wire contract is pinned here.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC, MLDSA
from Crypto.Signature import eddsa
from Crypto.Signature import mldsa as pyc_mldsa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, utils

from kms_core import material
from kms_core.errors import BadRequest
from kms_core.keyring import Keyring
from kms_core.model import Algorithm as A
from kms_core.model import SigningAlgorithm as S

MSG = b"the quick brown fox signs the lazy dog"
HASH_OF = {"SHA_256": "sha256", "SHA_384": "sha384", "SHA_512": "sha512"}
EC_KEYS = [A.ECC_NIST_P256, A.ECC_NIST_P384, A.ECC_NIST_P521]
ECDSA = [S.ECDSA_SHA_256, S.ECDSA_SHA_384, S.ECDSA_SHA_512]
PSS = [S.RSASSA_PSS_SHA_256, S.RSASSA_PSS_SHA_384, S.RSASSA_PSS_SHA_512]
PKCS1 = [S.RSASSA_PKCS1_V1_5_SHA_256, S.RSASSA_PKCS1_V1_5_SHA_384, S.RSASSA_PKCS1_V1_5_SHA_512]


def hash_name(alg: S) -> str:
    return HASH_OF[alg.value[-7:]]


def ring_for(algorithm: A) -> Keyring:
    return Keyring(algorithm, {1: material.generate(algorithm)}, 1)


def bad_request(fn: object, *args: object) -> str:
    with pytest.raises(BadRequest) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.message


class OpenSSL:
    """Files for one key in a temp dir, and the CLI calls that verify against them."""

    def __init__(self, ring: Keyring, tmp: Path) -> None:
        self.tmp = tmp
        public = serialization.load_der_public_key(ring.public_key())
        self.pub = tmp / "pub.pem"
        self.pub.write_bytes(
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def _write(self, name: str, data: bytes) -> str:
        (self.tmp / name).write_bytes(data)
        return str(self.tmp / name)

    def dgst_verify(self, hash_: str, sig: bytes, msg: bytes, *sigopts: str) -> bool:
        opts = [x for o in sigopts for x in ("-sigopt", o)]
        cmd = ["openssl", "dgst", f"-{hash_}", "-verify", str(self.pub), *opts,
               "-signature", self._write("sig.bin", sig), self._write("msg.bin", msg)]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True)
        assert (result.returncode == 0) == (b"Verified OK" in result.stdout), result
        return result.returncode == 0

    def rawin_verify(self, sig: bytes, msg: bytes) -> bool:
        cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(self.pub), "-rawin",
               "-in", self._write("msg.bin", msg), "-sigfile", self._write("sig.bin", sig)]  # fmt: skip
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def dgst_sign(self, key_pem: Path, hash_: str, msg: bytes, *sigopts: str) -> bytes:
        opts = [x for o in sigopts for x in ("-sigopt", o)]
        out = self.tmp / "osig.bin"
        cmd = ["openssl", "dgst", f"-{hash_}", "-sign", str(key_pem), *opts, "-out", str(out),
               self._write("msg.bin", msg)]  # fmt: skip
        subprocess.run(cmd, capture_output=True, check=True)
        return out.read_bytes()


# -- RSA ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa(rsa_4096_material: bytes) -> Keyring:
    return Keyring(A.RSA_4096, {1: rsa_4096_material}, 1)


@pytest.fixture(scope="module")
def rsa_pem(rsa_4096_material: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rsa") / "key.pem"
    path.write_bytes(material.export_private(A.RSA_4096, rsa_4096_material))
    return path


def test_rsa_public_key_is_550_byte_spki(rsa: Keyring) -> None:
    assert len(rsa.public_key()) == 550
    assert rsa.is_slow


@pytest.mark.parametrize("alg", PSS)
def test_pss_verifies_with_openssl_at_salt_equal_hash_length(rsa: Keyring, alg: S, tmp_path: Path) -> None:
    sig = rsa.sign(alg, MSG, False)
    assert len(sig) == 512
    ossl = OpenSSL(rsa, tmp_path)
    salt = hashlib.new(hash_name(alg)).digest_size
    assert ossl.dgst_verify(hash_name(alg), sig, MSG, "rsa_padding_mode:pss", f"rsa_pss_saltlen:{salt}")
    assert not ossl.dgst_verify(
        hash_name(alg), sig, MSG, "rsa_padding_mode:pss", f"rsa_pss_saltlen:{salt + 1}"
    )
    assert not ossl.dgst_verify(
        hash_name(alg), sig, MSG + b"!", "rsa_padding_mode:pss", f"rsa_pss_saltlen:{salt}"
    )
    assert rsa.verify(alg, MSG, sig, False)
    assert rsa.sign(alg, MSG, False) != sig  # PSS is randomised


def test_openssl_pss_signature_verifies_only_with_exact_salt(
    rsa: Keyring, rsa_pem: Path, tmp_path: Path
) -> None:
    ossl = OpenSSL(rsa, tmp_path)
    good = ossl.dgst_sign(rsa_pem, "sha256", MSG, "rsa_padding_mode:pss", "rsa_pss_saltlen:32")
    assert rsa.verify(S.RSASSA_PSS_SHA_256, MSG, good, False)
    other_salt = ossl.dgst_sign(rsa_pem, "sha256", MSG, "rsa_padding_mode:pss", "rsa_pss_saltlen:max")
    assert not rsa.verify(S.RSASSA_PSS_SHA_256, MSG, other_salt, False)


@pytest.mark.parametrize("alg", PKCS1)
def test_pkcs1_verifies_with_openssl_and_is_deterministic(rsa: Keyring, alg: S, tmp_path: Path) -> None:
    sig = rsa.sign(alg, MSG, False)
    ossl = OpenSSL(rsa, tmp_path)
    assert ossl.dgst_verify(hash_name(alg), sig, MSG)
    assert not ossl.dgst_verify(hash_name(alg), sig, MSG + b"!")
    assert rsa.sign(alg, MSG, False) == sig


@pytest.mark.parametrize("alg", PKCS1)
def test_pkcs1_digest_mode_is_byte_identical(rsa: Keyring, alg: S, tmp_path: Path) -> None:
    digest = hashlib.new(hash_name(alg), MSG).digest()
    sig = rsa.sign(alg, digest, True)
    assert sig == rsa.sign(alg, MSG, False)
    assert rsa.verify(alg, digest, sig, True)
    assert rsa.verify(alg, MSG, sig, False)
    assert not rsa.verify(alg, hashlib.new(hash_name(alg), b"other").digest(), sig, True)


def test_openssl_pkcs1_signature_verifies(rsa: Keyring, rsa_pem: Path, tmp_path: Path) -> None:
    sig = OpenSSL(rsa, tmp_path).dgst_sign(rsa_pem, "sha384", MSG)
    assert rsa.verify(S.RSASSA_PKCS1_V1_5_SHA_384, MSG, sig, False)
    assert not rsa.verify(S.RSASSA_PKCS1_V1_5_SHA_256, MSG, sig, False)


def test_rsa_digest_of_wrong_length(rsa: Keyring) -> None:
    sha512 = hashlib.sha512(MSG).digest()
    assert bad_request(rsa.sign, S.RSASSA_PKCS1_V1_5_SHA_256, sha512, True) == (
        "Failed to sign RSA digest with RSASSA_PKCS1_V1_5_SHA_256 due to signing error. "
        "Ensure that your digest is hashed with SHA256."
    )
    assert bad_request(rsa.sign, S.RSASSA_PKCS1_V1_5_SHA_384, b"x" * 32, True).endswith("hashed with SHA384.")
    sig = rsa.sign(S.RSASSA_PKCS1_V1_5_SHA_256, MSG, False)
    assert rsa.verify(S.RSASSA_PKCS1_V1_5_SHA_256, sha512, sig, True) is False


@pytest.mark.parametrize("alg", PSS)
def test_pss_refuses_digest_mode(rsa: Keyring, alg: S) -> None:
    digest = hashlib.new(hash_name(alg), MSG).digest()
    assert bad_request(rsa.sign, alg, digest, True) == "RSA PSS does not support digested input"
    assert bad_request(rsa.verify, alg, digest, b"s" * 512, True) == "RSA PSS does not support digested input"


@pytest.mark.parametrize("other", [S.ECDSA_SHA_256, S.ED25519_SHA_512, S.ED25519_PH_SHA_512, S.ML_DSA_65])
def test_rsa_key_refuses_other_families(rsa: Keyring, other: S) -> None:
    expected = f"KMS RSA_4096 key cannot be used with {other.value}"
    assert bad_request(rsa.sign, other, MSG, False) == expected
    assert bad_request(rsa.verify, other, MSG, b"sig", False) == expected


# -- ECDSA -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=EC_KEYS, ids=lambda a: a.value)
def ec(request: pytest.FixtureRequest) -> Keyring:
    return ring_for(request.param)


@pytest.mark.parametrize("alg", ECDSA)
def test_ecdsa_der_signature_verifies_with_openssl(ec: Keyring, alg: S, tmp_path: Path) -> None:
    sig = ec.sign(alg, MSG, False)
    r, s = utils.decode_dss_signature(sig)  # DER SEQUENCE{r, s}, not raw r||s
    assert r > 0 and s > 0
    ossl = OpenSSL(ec, tmp_path)
    assert ossl.dgst_verify(hash_name(alg), sig, MSG)
    assert not ossl.dgst_verify(hash_name(alg), sig, MSG + b"!")
    assert ec.verify(alg, MSG, sig, False)
    assert not ec.verify(alg, b"different data", sig, False)


@pytest.mark.parametrize("alg", ECDSA)
def test_ecdsa_digest_mode_verifies_as_message_signature(ec: Keyring, alg: S, tmp_path: Path) -> None:
    digest = hashlib.new(hash_name(alg), MSG).digest()
    sig = ec.sign(alg, digest, True)
    assert OpenSSL(ec, tmp_path).dgst_verify(hash_name(alg), sig, MSG)
    assert ec.verify(alg, MSG, sig, False)
    assert ec.verify(alg, digest, ec.sign(alg, MSG, False), True)


def test_ecdsa_digest_of_wrong_length(ec: Keyring) -> None:
    assert bad_request(ec.sign, S.ECDSA_SHA_256, hashlib.sha512(MSG).digest(), True) == (
        "Failed to sign ECC digest with ECDSA_SHA_256 due to signing error. "
        "Ensure that your digest is hashed with SHA256."
    )
    sig = ec.sign(S.ECDSA_SHA_512, MSG, False)
    assert ec.verify(S.ECDSA_SHA_512, b"short", sig, True) is False


def test_ecdsa_refuses_other_families(ec: Keyring) -> None:
    for other in (S.RSASSA_PSS_SHA_256, S.RSASSA_PKCS1_V1_5_SHA_512, S.ED25519_SHA_512, S.ML_DSA_44):
        assert (
            bad_request(ec.sign, other, MSG, False)
            == f"KMS {ec.algorithm.value} key cannot be used with {other}"
        )


def test_p256_public_key_is_91_byte_spki() -> None:
    assert len(ring_for(A.ECC_NIST_P256).public_key()) == 91


# -- Ed25519 / Ed25519ph -----------------------------------------------------------------------

# RFC 8032 §7.3, the Ed25519ph test vector (message "abc").
RFC8032_SEED = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
RFC8032_PUBLIC = bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
RFC8032_SIG = bytes.fromhex(
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)


@pytest.fixture(scope="module")
def ed() -> Keyring:
    return ring_for(A.ECC_NIST_ED25519)


def rfc8032_ring() -> Keyring:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SEED)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Keyring(A.ECC_NIST_ED25519, {1: der}, 1)


def test_ed25519ph_matches_rfc8032_vector() -> None:
    ring = rfc8032_ring()
    assert ring.public_key()[-32:] == RFC8032_PUBLIC
    digest = hashlib.sha512(b"abc").digest()
    assert ring.sign(S.ED25519_PH_SHA_512, digest, True) == RFC8032_SIG
    assert ring.verify(S.ED25519_PH_SHA_512, digest, RFC8032_SIG, True)


def test_ed25519_pure_verifies_with_openssl(ed: Keyring, tmp_path: Path) -> None:
    sig = ed.sign(S.ED25519_SHA_512, MSG, False)
    assert len(sig) == 64
    ossl = OpenSSL(ed, tmp_path)
    assert ossl.rawin_verify(sig, MSG)
    assert not ossl.rawin_verify(sig, MSG + b"!")
    assert ed.verify(S.ED25519_SHA_512, MSG, sig, False)
    corrupted = bytes([(sig[0] + 1) % 256]) + sig[1:]
    assert not ed.verify(S.ED25519_SHA_512, MSG, corrupted, False)


def test_ed25519ph_verifies_with_pycryptodome(ed: Keyring) -> None:
    sig = ed.sign(S.ED25519_PH_SHA_512, hashlib.sha512(MSG).digest(), True)
    verifier = eddsa.new(ECC.import_key(ed.public_key()), "rfc8032")
    verifier.verify(SHA512.new(MSG), sig)  # raises ValueError if invalid
    with pytest.raises(ValueError):
        verifier.verify(SHA512.new(MSG + b"!"), sig)
    with pytest.raises(ValueError):  # prehash and pure signatures are domain-separated
        verifier.verify(MSG, sig)


def test_ed25519ph_accepts_pycryptodome_signature(ed: Keyring) -> None:
    signer = eddsa.new(ECC.import_key(ed.export_private()), "rfc8032")
    digest = hashlib.sha512(MSG).digest()
    sig = signer.sign(SHA512.new(MSG))
    assert ed.verify(S.ED25519_PH_SHA_512, digest, sig, True)
    assert not ed.verify(S.ED25519_PH_SHA_512, hashlib.sha512(b"other").digest(), sig, True)
    assert not ed.verify(S.ED25519_PH_SHA_512, digest, b"\x00" * 64, True)
    assert not ed.verify(S.ED25519_PH_SHA_512, digest, sig[:63], True)
    assert not ed.verify(S.ED25519_SHA_512, MSG, sig, False)  # a prehash signature is not a pure one
    other = ring_for(A.ECC_NIST_ED25519)
    assert not ed.verify(S.ED25519_PH_SHA_512, digest, other.sign(S.ED25519_PH_SHA_512, digest, True), True)


def test_ed25519_argument_errors(ed: Keyring) -> None:
    digest = hashlib.sha512(MSG).digest()
    pure_digest = "ED25519_SHA_512 does not support digested input; use ED25519_PH_SHA_512"
    assert bad_request(ed.sign, S.ED25519_SHA_512, digest, True) == pure_digest
    assert bad_request(ed.verify, S.ED25519_SHA_512, digest, b"s" * 64, True) == pure_digest
    needs_digest = "ED25519_PH_SHA_512 requires digested input"
    assert bad_request(ed.sign, S.ED25519_PH_SHA_512, MSG, False) == needs_digest
    assert bad_request(ed.verify, S.ED25519_PH_SHA_512, MSG, b"s" * 64, False) == needs_digest
    wrong_size = "ED25519_PH_SHA_512 requires a SHA-512 digest"
    assert bad_request(ed.sign, S.ED25519_PH_SHA_512, hashlib.sha256(MSG).digest(), True) == wrong_size
    assert bad_request(ed.verify, S.ED25519_PH_SHA_512, b"d" * 63, b"s" * 64, True) == wrong_size
    assert bad_request(ed.sign, S.ECDSA_SHA_512, MSG, False) == (
        "KMS ECC_NIST_ED25519 key cannot be used with ECDSA_SHA_512"
    )


# -- ML-DSA ------------------------------------------------------------------------------------

ML_DSA_SIG_BYTES = {A.ML_DSA_44: 2420, A.ML_DSA_65: 3309, A.ML_DSA_87: 4627}


@pytest.mark.parametrize("algorithm", list(ML_DSA_SIG_BYTES), ids=lambda a: a.value)
def test_ml_dsa_verifies_with_pycryptodome(algorithm: A) -> None:
    ring = ring_for(algorithm)
    sig = ring.sign(S(algorithm.value), MSG, False)
    assert len(sig) == ML_DSA_SIG_BYTES[algorithm]
    verifier = pyc_mldsa.new(MLDSA.import_key(ring.public_key()))
    verifier.verify(MSG, sig)
    with pytest.raises(ValueError):
        verifier.verify(MSG + b"!", sig)
    assert ring.verify(S(algorithm.value), MSG, sig, False)
    assert not ring.verify(S(algorithm.value), MSG + b"!", sig, False)
    assert ring.is_slow


def test_ml_dsa_accepts_pycryptodome_signature() -> None:
    ring = ring_for(A.ML_DSA_65)
    signer = pyc_mldsa.new(MLDSA.import_key(material.export_private(A.ML_DSA_65, ring.export_private())))
    sig = signer.sign(MSG)
    assert ring.verify(S.ML_DSA_65, MSG, sig, False)
    assert not ring.verify(S.ML_DSA_65, MSG, sig[:-1], False)


def test_ml_dsa_argument_errors() -> None:
    ring = ring_for(A.ML_DSA_65)
    only = "KMS ML_DSA_65 key can only be used with ML_DSA_65 signing algorithm"
    for other in (S.ML_DSA_44, S.ECDSA_SHA_256, S.RSASSA_PSS_SHA_256, S.ED25519_SHA_512):
        assert bad_request(ring.sign, other, MSG, False) == only
        assert bad_request(ring.verify, other, MSG, b"s", False) == only
    assert bad_request(ring.sign, S.ML_DSA_65, MSG, True) == "ML-DSA does not support digested input"
    assert bad_request(ring.verify, S.ML_DSA_65, MSG, b"s", True) == "ML-DSA does not support digested input"


# -- verification never raises for bad signatures ----------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "alg"),
    [(A.ECC_NIST_P384, S.ECDSA_SHA_384), (A.ECC_NIST_ED25519, S.ED25519_SHA_512), (A.ML_DSA_44, S.ML_DSA_44)],
)
@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x30\x02\x02\x00", b"\xff" * 9000])
def test_malformed_signatures_are_false(algorithm: A, alg: S, bad: bytes) -> None:
    assert ring_for(algorithm).verify(alg, MSG, bad, False) is False


@pytest.mark.parametrize("bad", [b"", b"\x00" * 511, b"\x00" * 512, b"\xff" * 513])
def test_malformed_rsa_signatures_are_false(rsa: Keyring, bad: bytes) -> None:
    assert rsa.verify(S.RSASSA_PSS_SHA_256, MSG, bad, False) is False
    assert rsa.verify(S.RSASSA_PKCS1_V1_5_SHA_256, hashlib.sha256(MSG).digest(), bad, True) is False


def test_symmetric_keyring_cannot_sign() -> None:
    with pytest.raises(TypeError):
        ring_for(A.AES_256_GCM).sign(S.ECDSA_SHA_256, MSG, False)
