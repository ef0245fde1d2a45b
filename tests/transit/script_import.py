"""Differential steps of Transit BYOK (`wrapping_key`, `keys/:name/import`,
`keys/:name/import_version`), with tests/transit/script.py's conventions.

An import ciphertext is wrapped for the server it is sent to, so `prepare` reads each server's
wrapping key and remembers the wrapped blobs (`$w-<name>`) in that server's session before the
steps run; the material inside is the same for both. Requests OpenBao answers with a 500 are not
here (KubeKMS answers 400 with the same text: tests/transit/test_import.py).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, Final

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from differential import SHAPE, Session, Step, run
from script import HELLO, S
from servers import start_kubekms, start_openbao, stop_openbao

KEY_READ: Final = {"keys": SHAPE}


def _der(private: Any) -> bytes:
    return bytes(
        private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def materials() -> dict[str, tuple[bytes, str]]:
    """name -> (material, hash function) of every blob the steps import."""
    return {
        "aes": (os.urandom(32), "SHA256"),
        "aes-v2": (os.urandom(32), "SHA256"),
        "aes128": (os.urandom(16), "SHA256"),
        "chacha": (os.urandom(32), "SHA256"),
        "hmac": (os.urandom(32), "SHA256"),
        "p256": (_der(ec.generate_private_key(ec.SECP256R1())), "SHA256"),
        "ed": (_der(ed25519.Ed25519PrivateKey.generate()), "SHA256"),
        "rsa": (_der(rsa.generate_private_key(65537, 2048)), "SHA256"),
        "sha512": (os.urandom(32), "SHA512"),
        "sha1": (os.urandom(32), "SHA1"),
    }


def prepare(session: Session, blobs: dict[str, tuple[bytes, str]]) -> None:
    """Wrap every material for this server's wrapping key, remembered as `w-<name>`."""
    reply = requests.get(
        f"{session.url}/v1/transit/wrapping_key", headers={"X-Vault-Token": session.root_token}, timeout=60
    )
    wrapping = serialization.load_pem_public_key(reply.json()["data"]["public_key"].encode())
    assert isinstance(wrapping, rsa.RSAPublicKey)
    algorithms = {"SHA1": hashes.SHA1(), "SHA256": hashes.SHA256(), "SHA512": hashes.SHA512()}
    for name, (material, hash_name) in blobs.items():
        algorithm = algorithms[hash_name]
        ephemeral = os.urandom(32)
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
        blob = wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
        session.saved[f"w-{name}"] = base64.b64encode(blob).decode()


def _read(name: str) -> list[Step]:
    """The whole read (`imported_key`, `imported_key_allow_rotation`, ...); versions by shape."""
    return [S("GET", f"transit/keys/{name}", select="data", loose=KEY_READ, note="imported")]


def import_steps() -> list[Step]:
    steps = [
        S("GET", "transit/wrapping_key"),
        S("POST", "transit/wrapping_key", {}, note="read only"),
        S("GET", "transit/keys/i-aes/import", note="write only"),
        S("POST", "transit/keys/i-aes/import", {"ciphertext": "$w-aes"}),
        *_read("i-aes"),
        S("POST", "transit/encrypt/i-aes", {"plaintext": HELLO}, save={"i-aes-ct": "data.ciphertext"}),
        S("POST", "transit/decrypt/i-aes", {"ciphertext": "$i-aes-ct"}, note="round trip"),
        S("POST", "transit/keys/i-bad/import", {"ciphertext": "$w-aes", "type": "nope"}),
        S("POST", "transit/keys/i-bad/import", {"ciphertext": "$w-aes", "hash_function": "md5"}),
        S("GET", "transit/keys/i-bad", note="nothing was imported"),
        S("POST", "transit/keys/i-128/import", {"ciphertext": "$w-aes128", "type": "aes128-gcm96"}),
        *_read("i-128"),
        S("POST", "transit/encrypt/i-128", {"plaintext": HELLO}, save={"i-128-ct": "data.ciphertext"}),
        S("POST", "transit/decrypt/i-128", {"ciphertext": "$i-128-ct"}),
        S(
            "POST",
            "transit/keys/i-cc/import",
            {"ciphertext": "$w-chacha", "type": "chacha20-poly1305", "exportable": True},
        ),
        *_read("i-cc"),
        S("GET", "transit/export/encryption-key/i-cc", select="data.keys", loose={"1": SHAPE}),
        S("POST", "transit/keys/i-hmac/import", {"ciphertext": "$w-hmac", "type": "hmac"}),
        S("POST", "transit/hmac/i-hmac", {"input": HELLO}, save={"i-hmac-mac": "data.hmac"}),
        S("POST", "transit/verify/i-hmac", {"input": HELLO, "hmac": "$i-hmac-mac"}),
        S("POST", "transit/keys/i-p256/import", {"ciphertext": "$w-p256", "type": "ecdsa-p256"}),
        *_read("i-p256"),
        S("POST", "transit/sign/i-p256", {"input": HELLO}, save={"i-p256-sig": "data.signature"}),
        S("POST", "transit/verify/i-p256", {"input": HELLO, "signature": "$i-p256-sig"}),
        S("POST", "transit/keys/i-ed/import", {"ciphertext": "$w-ed", "type": "ed25519"}),
        S("POST", "transit/sign/i-ed", {"input": HELLO}, save={"i-ed-sig": "data.signature"}),
        S("POST", "transit/verify/i-ed", {"input": HELLO, "signature": "$i-ed-sig"}),
        S("POST", "transit/keys/i-rsa/import", {"ciphertext": "$w-rsa", "type": "rsa-2048"}),
        *_read("i-rsa"),
        S("POST", "transit/encrypt/i-rsa", {"plaintext": HELLO}, save={"i-rsa-ct": "data.ciphertext"}),
        S("POST", "transit/decrypt/i-rsa", {"ciphertext": "$i-rsa-ct"}),
        S("POST", "transit/keys/i-512/import", {"ciphertext": "$w-sha512", "hash_function": "SHA512"}),
        S("POST", "transit/keys/i-sha1/import", {"ciphertext": "$w-sha1", "hash_function": "SHA1"}),
        S(
            "POST",
            "transit/keys/i-rot/import",
            {"ciphertext": "$w-aes", "allow_rotation": True, "auto_rotate_period": "2h"},
        ),
        *_read("i-rot"),
        S("POST", "transit/keys/i-rot/rotate", {}, loose=KEY_READ, note="allowed; no longer imported"),
        S("POST", "transit/keys/i-pb/import", {"ciphertext": "$w-aes", "allow_plaintext_backup": True}),
        *_read("i-pb"),
        S("POST", "transit/keys/i-aes/import_version", {"ciphertext": "$w-aes-v2"}),
        *_read("i-aes"),
        S("POST", "transit/encrypt/i-aes", {"plaintext": HELLO}, save={"i-aes-ct2": "data.ciphertext"}),
        S("POST", "transit/decrypt/i-aes", {"ciphertext": "$i-aes-ct2"}, note="version 2 round trip"),
        S("POST", "transit/decrypt/i-aes", {"ciphertext": "$i-aes-ct"}, note="version 1 still decrypts"),
        S("POST", "transit/keys/i-del/import", {"ciphertext": "$w-aes"}),
        S("POST", "transit/keys/i-del/config", {"deletion_allowed": True}, select="data.deletion_allowed"),
        S("DELETE", "transit/keys/i-del"),
        S("GET", "transit/keys/i-del"),
    ]
    return steps


def test_openbao_and_kubekms_agree_on_import(tmp_path: Path) -> None:
    """On servers of its own: once OpenBao has made its wrapping key, its key list shows an
    `import/` entry (README: a difference), which the other scripts' lists would see."""
    openbao, kubekms = start_openbao(tmp_path / "openbao"), start_kubekms(tmp_path)
    try:
        reference, ours = Session(openbao.url, openbao.token), Session(kubekms.url, kubekms.token)
        blobs = materials()
        prepare(reference, blobs)
        prepare(ours, blobs)
        failures = run([*import_steps(), *policy_steps()], reference, ours)
        assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures)
    finally:
        stop_openbao(openbao)
        assert kubekms.process is not None
        kubekms.process.stop()


def policy_steps() -> list[Step]:
    """`auto_rotate_period` on create, `exportable` turned on through config (false -> true)."""
    return [
        S("POST", "transit/keys/p-rot", {"auto_rotate_period": "30m"}),
        S("GET", "transit/keys/p-rot", note="a refused period creates nothing"),
        S("POST", "transit/keys/p-bogus", {"auto_rotate_period": "bogus"}),
        S("POST", "transit/keys/p-rot", {"auto_rotate_period": "2h"}, loose=KEY_READ),
        S("POST", "transit/keys/p-rot", {"auto_rotate_period": "5h"}, loose=KEY_READ, note="exists: as is"),
        S("POST", "transit/keys/p-rot-n", {"auto_rotate_period": 7200, "type": "ecdsa-p256"}, loose=KEY_READ),
        S("POST", "transit/keys/p-ex", {}, loose=KEY_READ),
        S("GET", "transit/export/encryption-key/p-ex"),
        S("POST", "transit/keys/p-ex/config", {"exportable": False}, loose=KEY_READ),
        S("POST", "transit/keys/p-ex/config", {"exportable": True}, loose=KEY_READ),
        S("POST", "transit/keys/p-ex/config", {"exportable": False}, loose=KEY_READ, note="stays exportable"),
        S("GET", "transit/export/encryption-key/p-ex", loose={"1": SHAPE}),
        S("POST", "transit/keys/p-exs", {"type": "ed25519"}, loose=KEY_READ),
        S("POST", "transit/keys/p-exs/config", {"exportable": "true"}, loose=KEY_READ),
        S("GET", "transit/export/signing-key/p-exs", loose={"1": SHAPE}),
    ]
