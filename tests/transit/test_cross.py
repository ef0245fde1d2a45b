"""Cross-decryption against the real OpenBao: the same material gives the same cryptography in
both. Keys made exportable in OpenBao are exported and loaded into KubeKMS's keyring; keys made
exportable in KubeKMS are exported through the Infisical private-key route and imported into
OpenBao (`transit/keys/:name/import`, wrapped with OpenBao's wrapping key: RSA-OAEP-SHA-256 of
an ephemeral AES-256 key, then AES-KWP of the key). Ciphertexts (plain, `associated_data`,
`derived` with `context`, `convergent_encryption`) and signatures made by either open and
verify in the other; convergent ciphertexts are equal byte for byte. Signatures cross with
every signing option (hashes, prehashed, none, PSS salts, asn1/jws), and HMACs with every hash
for hmac keys moved either way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any, Final

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from servers import KubeKms, OpenBao
from test_dialects import b64

from kms_core import ciphertext
from kms_core.keyring import Keyring
from kms_core.model import Algorithm

pytestmark = pytest.mark.integration

CONTEXT = b64(b"tenant-42")


def call(server: OpenBao | KubeKms, method: str, path: str, body: Any = None) -> dict[str, Any]:
    reply = requests.request(
        method, f"{server.url}/v1/{path}", json=body, headers={"X-Vault-Token": server.token}, timeout=60
    )
    assert reply.status_code in (200, 204), f"{server.name} {path}: {reply.status_code} {reply.text}"
    return reply.json() if reply.content else {}


def material_from_kubekms(kubekms: KubeKms, name: str) -> bytes:
    headers = {"Authorization": f"Bearer {kubekms.token}"}
    key = requests.get(
        f"{kubekms.url}/api/v1/kms/keys/key-name/{name}?projectId=default", headers=headers, timeout=30
    ).json()["key"]
    exported = requests.get(
        f"{kubekms.url}/api/v1/kms/keys/{key['id']}/private-key", headers=headers, timeout=30
    )
    assert exported.status_code == 200, exported.text
    return base64.b64decode(exported.json()["privateKey"])


def import_into_openbao(openbao: OpenBao, name: str, material: bytes, **options: Any) -> None:
    """OpenBao's BYOK import: RSA-OAEP-SHA-256(ephemeral AES key) || AES-KWP(ephemeral, key)."""
    pem = call(openbao, "GET", "transit/wrapping_key")["data"]["public_key"]
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey)
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    blob = wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
    call(openbao, "POST", f"transit/keys/{name}/import", {"ciphertext": b64(blob), **options})


def encrypt(server: OpenBao | KubeKms, name: str, plaintext: bytes, **extra: Any) -> str:
    data = call(server, "POST", f"transit/encrypt/{name}", {"plaintext": b64(plaintext), **extra})["data"]
    value: str = data["ciphertext"]
    return value


def decrypt(server: OpenBao | KubeKms, name: str, value: str, **extra: Any) -> bytes:
    data = call(server, "POST", f"transit/decrypt/{name}", {"ciphertext": value, **extra})["data"]
    return base64.b64decode(data["plaintext"])


@pytest.mark.parametrize(
    ("bao_type", "algorithm"),
    [("aes256-gcm96", Algorithm.AES_256_GCM), ("aes128-gcm96", Algorithm.AES_128_GCM),
     ("chacha20-poly1305", Algorithm.CHACHA20_POLY1305)],
)  # fmt: skip
@pytest.mark.parametrize("convergent", [False, True])
def test_openbao_derived_keys_open_in_the_kubekms_keyring(
    openbao: OpenBao, bao_type: str, algorithm: Algorithm, convergent: bool
) -> None:
    name = f"bao-{bao_type}-{convergent}".replace("_", "-")
    options = {"type": bao_type, "exportable": True, "derived": True, "convergent_encryption": convergent}
    call(openbao, "POST", f"transit/keys/{name}", options)
    sealed = encrypt(openbao, name, b"from openbao", context=CONTEXT)
    material = base64.b64decode(
        call(openbao, "GET", f"transit/export/encryption-key/{name}")["data"]["keys"]["1"]
    )
    ring = Keyring(algorithm, {1: material}, 1, derived=True, convergent=convergent)
    raw = base64.b64decode(sealed.removeprefix("vault:v1:"))
    assert ring.decrypt_raw(raw, 1, context=b"tenant-42") == b"from openbao"
    ours = ciphertext.unpack(ring.encrypt(b"from kubekms", context=b"tenant-42"))[0]
    assert decrypt(openbao, name, "vault:v1:" + b64(ours), context=CONTEXT) == b"from kubekms"
    if convergent:  # the same plaintext and context give the same bytes in both
        again = ciphertext.unpack(ring.encrypt(b"from openbao", context=b"tenant-42"))[0]
        assert "vault:v1:" + b64(again) == sealed


@pytest.mark.parametrize("bao_type", ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"])
def test_kubekms_keys_imported_into_openbao(openbao: OpenBao, kubekms: KubeKms, bao_type: str) -> None:
    """Plain (non-derived) keys. Derived keys cannot go this way: OpenBao gives an imported
    derived key its legacy KDF (`kdf: hmac-sha256-counter`, not the `hkdf_sha256` of the keys it
    creates) and refuses to import convergent ones; README, "Vault Transit API"."""
    name = f"kk-{bao_type}"
    call(kubekms, "POST", f"transit/keys/{name}", {"type": bao_type, "exportable": True})
    import_into_openbao(openbao, name, material_from_kubekms(kubekms, name), type=bao_type)
    assert decrypt(kubekms, name, encrypt(openbao, name, b"bao side")) == b"bao side"
    assert decrypt(openbao, name, encrypt(kubekms, name, b"kubekms side")) == b"kubekms side"


def test_kubekms_aead_with_associated_data_opens_in_openbao(openbao: OpenBao, kubekms: KubeKms) -> None:
    call(kubekms, "POST", "transit/keys/kk-aad", {"type": "chacha20-poly1305", "exportable": True})
    import_into_openbao(openbao, "kk-aad", material_from_kubekms(kubekms, "kk-aad"), type="chacha20-poly1305")
    aad = b64(b"header")
    assert (
        decrypt(openbao, "kk-aad", encrypt(kubekms, "kk-aad", b"x", associated_data=aad), associated_data=aad)
        == b"x"
    )
    assert (
        decrypt(kubekms, "kk-aad", encrypt(openbao, "kk-aad", b"y", associated_data=aad), associated_data=aad)
        == b"y"
    )


@pytest.mark.parametrize("bits", [2048, 3072])
def test_kubekms_rsa_keys_imported_into_openbao(openbao: OpenBao, kubekms: KubeKms, bits: int) -> None:
    name = f"kk-rsa{bits}"
    call(kubekms, "POST", f"transit/keys/{name}", {"type": f"rsa-{bits}", "exportable": True})
    private = serialization.load_pem_private_key(material_from_kubekms(kubekms, name), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    import_into_openbao(openbao, name, der, type=f"rsa-{bits}")
    # RSA-OAEP-SHA-256 both ways
    assert decrypt(openbao, name, encrypt(kubekms, name, b"oaep 1")) == b"oaep 1"
    assert decrypt(kubekms, name, encrypt(openbao, name, b"oaep 2")) == b"oaep 2"
    # Signatures: PKCS#1 v1.5 and PSS (the maximum salt, verified by auto-detection) both ways.
    for algorithm, pairs in (
        ("pkcs1v15", ((kubekms, openbao), (openbao, kubekms))),
        ("pss", ((kubekms, openbao), (openbao, kubekms))),
    ):
        body = {"input": b64(b"signed"), "signature_algorithm": algorithm}
        for signer, verifier in pairs:
            signature = call(signer, "POST", f"transit/sign/{name}", body)["data"]["signature"]
            verdict = call(verifier, "POST", f"transit/verify/{name}", {**body, "signature": signature})
            assert verdict["data"]["valid"] is True, (signer.name, algorithm)


# -- signatures and HMACs across the two (issue #14: every signing option, both directions) ------

# One key per type, made exportable in KubeKMS and imported into OpenBao: then each side signs
# and the other verifies, with every option that changes the bytes.
SIGNING_KEYS: Final = {"ecdsa-p256": "x-p256", "ecdsa-p384": "x-p384", "ecdsa-p521": "x-p521",
                       "rsa-2048": "x-rsa", "ed25519": "x-ed"}  # fmt: skip
PSS_SALTS: Final = ("auto", "hash", "20", 0)


@pytest.fixture(scope="module")
def signing_keys(openbao: OpenBao, kubekms: KubeKms) -> dict[str, str]:
    for bao_type, name in SIGNING_KEYS.items():
        call(kubekms, "POST", f"transit/keys/{name}", {"type": bao_type, "exportable": True})
        private = serialization.load_pem_private_key(material_from_kubekms(kubekms, name), password=None)
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        import_into_openbao(openbao, name, der, type=bao_type)
    return SIGNING_KEYS


def _crossed(
    openbao: OpenBao, kubekms: KubeKms, name: str, sign: dict[str, Any], verify: dict[str, Any]
) -> None:
    """A signature by either verifies in the other (and not over other input)."""
    for signer, verifier in ((openbao, kubekms), (kubekms, openbao)):
        signature = call(signer, "POST", f"transit/sign/{name}", {"input": b64(b"signed"), **sign})["data"][
            "signature"
        ]
        for data, expected in ((b"signed", True), (b"other", False)):
            body = {"input": b64(data), "signature": signature, **verify}
            verdict = call(verifier, "POST", f"transit/verify/{name}", body)["data"]["valid"]
            assert verdict is expected, (signer.name, name, sign, verify, data)


@pytest.mark.parametrize("marshaling", ["asn1", "jws"])
@pytest.mark.parametrize(
    "hash_algorithm", ["sha1", "sha2-224", "sha2-256", "sha2-512", "sha3-256", "sha3-512"]
)
@pytest.mark.parametrize("bao_type", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519"])
def test_ecdsa_and_ed25519_signatures_cross(
    openbao: OpenBao,
    kubekms: KubeKms,
    signing_keys: dict[str, str],
    bao_type: str,
    hash_algorithm: str,
    marshaling: str,
) -> None:
    options = {"hash_algorithm": hash_algorithm, "marshaling_algorithm": marshaling}
    _crossed(openbao, kubekms, signing_keys[bao_type], options, options)


@pytest.mark.parametrize("marshaling", ["asn1", "jws"])
@pytest.mark.parametrize("bao_type", ["ecdsa-p256", "ecdsa-p521"])
def test_prehashed_ecdsa_signatures_cross(
    openbao: OpenBao, kubekms: KubeKms, signing_keys: dict[str, str], bao_type: str, marshaling: str
) -> None:
    """A digest of any length (Go's and OpenSSL's truncation), and `none`. (A P-521 digest
    over 64 bytes whose integer needs more than 512 bits is refused by KubeKMS: README.)"""
    name = signing_keys[bao_type]
    for digest in (hashlib.sha256(b"d").digest(), b"short", bytes(range(64)), b"\0\1" + b"\1" * 64):
        for extra in ({}, {"hash_algorithm": "none", "signature_algorithm": "pkcs1v15"}):
            body = {"input": b64(digest), "prehashed": True, "marshaling_algorithm": marshaling, **extra}
            for signer, verifier in ((openbao, kubekms), (kubekms, openbao)):
                signature = call(signer, "POST", f"transit/sign/{name}", body)["data"]["signature"]
                verdict = call(verifier, "POST", f"transit/verify/{name}", {**body, "signature": signature})
                assert verdict["data"]["valid"] is True, (signer.name, digest, extra)


@pytest.mark.parametrize("marshaling", ["asn1", "jws"])
@pytest.mark.parametrize("hash_algorithm", ["sha1", "sha2-224", "sha2-256", "sha2-512", "sha3-384"])
def test_rsa_signatures_cross(
    openbao: OpenBao, kubekms: KubeKms, signing_keys: dict[str, str], hash_algorithm: str, marshaling: str
) -> None:
    name = signing_keys["rsa-2048"]
    common = {"hash_algorithm": hash_algorithm, "marshaling_algorithm": marshaling}
    _crossed(openbao, kubekms, name, {**common, "signature_algorithm": "pkcs1v15"},
             {**common, "signature_algorithm": "pkcs1v15"})  # fmt: skip
    for salt in PSS_SALTS:
        sign = {**common, "salt_length": salt}
        _crossed(openbao, kubekms, name, sign, sign)  # verified with the salt it was made with
        _crossed(openbao, kubekms, name, sign, common)  # and with auto-detection (the default)


def test_rsa_raw_pkcs1v15_and_prehashed_cross(
    openbao: OpenBao, kubekms: KubeKms, signing_keys: dict[str, str]
) -> None:
    name = signing_keys["rsa-2048"]
    raw = {"hash_algorithm": "none", "prehashed": True, "signature_algorithm": "pkcs1v15"}
    digest = {"prehashed": True, "hash_algorithm": "sha2-384"}
    pkcs1 = {**digest, "signature_algorithm": "pkcs1v15"}
    for options, data in (
        (raw, b"any"),
        (digest, hashlib.sha384(b"m").digest()),
        (pkcs1, hashlib.sha384(b"m").digest()),
    ):
        for signer, verifier in ((openbao, kubekms), (kubekms, openbao)):
            body = {"input": b64(data), **options}
            signature = call(signer, "POST", f"transit/sign/{name}", body)["data"]["signature"]
            verdict = call(verifier, "POST", f"transit/verify/{name}", {**body, "signature": signature})
            assert verdict["data"]["valid"] is True, (signer.name, options)


def _macs_cross(openbao: OpenBao, kubekms: KubeKms, name: str) -> None:
    for algorithm in ("sha1", "sha2-224", "sha2-256", "sha2-512", "sha3-256", "sha3-512"):
        for signer, verifier in ((openbao, kubekms), (kubekms, openbao)):
            body = {"input": b64(b"mac me"), "algorithm": algorithm}
            mac = call(signer, "POST", f"transit/hmac/{name}", body)["data"]["hmac"]
            assert call(verifier, "POST", f"transit/hmac/{name}", body)["data"]["hmac"] == mac
            verdict = call(verifier, "POST", f"transit/verify/{name}", {**body, "hmac": mac})
            assert verdict["data"]["valid"] is True, (signer.name, algorithm)
            other = call(
                verifier, "POST", f"transit/verify/{name}", {**body, "input": b64(b"x"), "hmac": mac}
            )
            assert other["data"]["valid"] is False


def test_openbao_hmac_key_imported_into_kubekms(openbao: OpenBao, kubekms: KubeKms) -> None:
    """OpenBao's `export/hmac-key`, imported through Infisical's bulk import of raw material."""
    call(openbao, "POST", "transit/keys/x-bao-mac", {"type": "hmac", "key_size": 32, "exportable": True})
    material = call(openbao, "GET", "transit/export/hmac-key/x-bao-mac")["data"]["keys"]["1"]
    imported = requests.post(
        f"{kubekms.url}/api/v1/kms/keys/bulk-import",
        json={"projectId": "default", "keys": [{"name": "x-bao-mac", "keyUsage": "generate-verify-mac",
                                                "algorithm": "HMAC_SHA_256", "keyMaterial": material}]},
        headers={"Authorization": f"Bearer {kubekms.token}"}, timeout=30,
    )  # fmt: skip
    assert imported.status_code == 200 and not imported.json()["errors"], imported.text
    _macs_cross(openbao, kubekms, "x-bao-mac")


def test_kubekms_hmac_key_imported_into_openbao(openbao: OpenBao, kubekms: KubeKms) -> None:
    call(kubekms, "POST", "transit/keys/x-kk-mac", {"type": "hmac", "exportable": True})
    material = base64.b64decode(call(kubekms, "GET", "transit/export/hmac-key/x-kk-mac")["data"]["keys"]["1"])
    assert material == material_from_kubekms(kubekms, "x-kk-mac")  # an hmac key's HMAC key is itself
    import_into_openbao(openbao, "x-kk-mac", material, type="hmac")
    _macs_cross(openbao, kubekms, "x-kk-mac")


def test_a_non_hmac_key_macs_with_its_exported_hmac_key(kubekms: KubeKms) -> None:
    """Every other key type MACs with a per-version key derived from its material; that key is
    what `export/hmac-key` returns, and it is not the material itself."""
    call(kubekms, "POST", "transit/keys/x-aes-mac", {"exportable": True})
    call(kubekms, "POST", "transit/keys/x-aes-mac/rotate")
    keys = call(kubekms, "GET", "transit/export/hmac-key/x-aes-mac")["data"]["keys"]
    assert set(keys) == {"1", "2"} and keys["1"] != keys["2"]
    assert base64.b64decode(keys["2"]) != material_from_kubekms(kubekms, "x-aes-mac")
    for version in ("1", "2"):
        mac = hmac.digest(base64.b64decode(keys[version]), b"m", "sha3_256")
        body = {"input": b64(b"m"), "algorithm": "sha3-256", "hmac": f"vault:v{version}:{b64(mac)}"}
        assert call(kubekms, "POST", "transit/verify/x-aes-mac", body)["data"]["valid"] is True


# --- BYOK into KubeKMS: keys made exportable in OpenBao, exported, wrapped with KubeKMS's
# wrapping key and imported through KubeKMS's `transit/keys/:name/import`.


def import_wrapped(
    server: OpenBao | KubeKms, name: str, material: bytes, path: str = "import", **options: Any
) -> None:
    """OpenBao's BYOK format against either server's wrapping key."""
    pem = call(server, "GET", "transit/wrapping_key")["data"]["public_key"]
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey) and wrapping.key_size == 4096
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    blob = wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
    call(server, "POST", f"transit/keys/{name}/{path}", {"ciphertext": b64(blob), **options})


def openbao_material(openbao: OpenBao, bao_type: str, name: str) -> bytes:
    """An OpenBao key's version 1 as its import takes it: raw bytes, or PKCS#8 DER."""
    kind = "hmac-key" if bao_type == "hmac" else "encryption-key"
    if bao_type.startswith(("ecdsa", "ed25519")):
        kind = "signing-key"
    exported: str = call(openbao, "GET", f"transit/export/{kind}/{name}")["data"]["keys"]["1"]
    if bao_type.startswith(("aes", "chacha", "hmac")):
        return base64.b64decode(exported)
    if bao_type == "ed25519":  # OpenBao exports seed || public key
        private: Any = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(exported)[:32])
    else:
        private = serialization.load_pem_private_key(exported.encode(), password=None)
    return bytes(
        private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def sign_and_verify_across(openbao: OpenBao, kubekms: KubeKms, name: str, **options: Any) -> None:
    body = {"input": b64(b"signed across"), **options}
    for signer, verifier in ((openbao, kubekms), (kubekms, openbao)):
        signature = call(signer, "POST", f"transit/sign/{name}", body)["data"]["signature"]
        verdict = call(verifier, "POST", f"transit/verify/{name}", {**body, "signature": signature})
        assert verdict["data"]["valid"] is True, (signer.name, options)
        tampered = call(
            verifier,
            "POST",
            f"transit/verify/{name}",
            {**body, "input": b64(b"other"), "signature": signature},
        )
        assert tampered["data"]["valid"] is False, (signer.name, options)


@pytest.mark.parametrize("bao_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"])
def test_openbao_aead_keys_imported_into_kubekms(openbao: OpenBao, kubekms: KubeKms, bao_type: str) -> None:
    name = f"ob-{bao_type}"
    call(openbao, "POST", f"transit/keys/{name}", {"type": bao_type, "exportable": True})
    import_wrapped(kubekms, name, openbao_material(openbao, bao_type, name), type=bao_type)
    assert call(kubekms, "GET", f"transit/keys/{name}")["data"]["type"] == bao_type
    assert decrypt(kubekms, name, encrypt(openbao, name, b"bao side")) == b"bao side"
    assert decrypt(openbao, name, encrypt(kubekms, name, b"kubekms side")) == b"kubekms side"


@pytest.mark.parametrize("bao_type", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519"])
def test_openbao_signing_keys_imported_into_kubekms(
    openbao: OpenBao, kubekms: KubeKms, bao_type: str
) -> None:
    name = f"ob-{bao_type}"
    call(openbao, "POST", f"transit/keys/{name}", {"type": bao_type, "exportable": True})
    import_wrapped(kubekms, name, openbao_material(openbao, bao_type, name), type=bao_type)
    ours = call(kubekms, "GET", f"transit/keys/{name}")["data"]["keys"]["1"]["public_key"]
    assert ours == call(openbao, "GET", f"transit/keys/{name}")["data"]["keys"]["1"]["public_key"]
    sign_and_verify_across(openbao, kubekms, name)
    if bao_type.startswith("ecdsa"):
        sign_and_verify_across(openbao, kubekms, name, hash_algorithm="sha2-384")


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_openbao_rsa_keys_imported_into_kubekms(openbao: OpenBao, kubekms: KubeKms, bits: int) -> None:
    name, bao_type = f"ob-rsa-{bits}", f"rsa-{bits}"
    call(openbao, "POST", f"transit/keys/{name}", {"type": bao_type, "exportable": True})
    import_wrapped(kubekms, name, openbao_material(openbao, bao_type, name), type=bao_type)
    assert decrypt(kubekms, name, encrypt(openbao, name, b"oaep from bao")) == b"oaep from bao"
    assert decrypt(openbao, name, encrypt(kubekms, name, b"oaep from kk")) == b"oaep from kk"
    # PSS: OpenBao signs with the maximum salt and KubeKMS verifies a hash-length one until
    # `salt_length` lands (README), so PKCS#1 v1.5 both ways only.
    sign_and_verify_across(openbao, kubekms, name, signature_algorithm="pkcs1v15")


def test_openbao_hmac_key_wrapped_into_kubekms(openbao: OpenBao, kubekms: KubeKms) -> None:
    call(openbao, "POST", "transit/keys/ob-hmac", {"type": "hmac", "key_size": 32, "exportable": True})
    import_wrapped(kubekms, "ob-hmac", openbao_material(openbao, "hmac", "ob-hmac"), type="hmac")
    body = {"input": b64(b"mac me")}
    for maker, checker in ((openbao, kubekms), (kubekms, openbao)):
        mac = call(maker, "POST", "transit/hmac/ob-hmac", body)["data"]["hmac"]
        assert call(checker, "POST", "transit/verify/ob-hmac", {**body, "hmac": mac})["data"]["valid"] is True


def test_an_imported_version_is_the_latest_in_both(openbao: OpenBao, kubekms: KubeKms) -> None:
    """`import_version`: OpenBao's second version imported as KubeKMS's second version."""
    name = "ob-versions"
    call(openbao, "POST", f"transit/keys/{name}", {"type": "aes256-gcm96", "exportable": True})
    import_wrapped(kubekms, name, openbao_material(openbao, "aes256-gcm96", name))
    call(openbao, "POST", f"transit/keys/{name}/rotate")
    second = base64.b64decode(
        call(openbao, "GET", f"transit/export/encryption-key/{name}/2")["data"]["keys"]["2"]
    )
    import_wrapped(kubekms, name, second, path="import_version")
    assert call(kubekms, "GET", f"transit/keys/{name}")["data"]["latest_version"] == 2
    sealed = encrypt(kubekms, name, b"v2")
    assert sealed.startswith("vault:v2:") and decrypt(openbao, name, sealed) == b"v2"
    assert decrypt(kubekms, name, encrypt(openbao, name, b"v2 back")) == b"v2 back"
