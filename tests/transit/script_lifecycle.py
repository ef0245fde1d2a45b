"""The differential script of the key lifecycle routes (tests/transit/test_differential.py):
rotate, config, trim, delete, soft deletion, `key_version` on encrypt/sign/hmac, version bounds
on decrypt/verify, rewrap, datakey and export — each sent to OpenBao and to KubeKMS alike.

Keys are named `lc-*` so this script runs after the main one (tests/transit/script.py) on the
same servers without meeting its keys. Values random by nature (ciphertexts, data keys, exported
material) are compared by format, by length and by round trip.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Final

from differential import SHAPE, Step

HELLO: Final = "aGVsbG8="  # "hello"
KEY_READ: Final = {"keys": SHAPE}  # per-version creation times and public keys: compared by shape


def S(method: str, path: str, body: Any = None, **kw: Any) -> Step:
    return Step(method, path, body, **kw)


def _b64_len(size: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, str) and len(base64.b64decode(value, validate=True)) == size

    return check


def _exported(check: Callable[[str], bool]) -> Callable[[Any], bool]:
    """An export's `keys` map: every version's text passes `check`."""
    return lambda keys: isinstance(keys, dict) and bool(keys) and all(check(v) for v in keys.values())


def _pem(label: str, final_newline: bool) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        end = f"-----END {label}-----"
        return text.startswith(f"-----BEGIN {label}-----\n") and text.endswith(
            end + "\n" if final_newline else end
        )

    return check


def _decodes_to(size: int) -> Callable[[str], bool]:
    return lambda text: len(base64.b64decode(text, validate=True)) == size


def rotation_and_key_version_steps() -> list[Step]:
    return [
        S("POST", "transit/keys/lc-aes", {}, loose=KEY_READ),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO}, save={"lc_c1": "data.ciphertext"}),
        S("POST", "transit/keys/lc-aes/rotate", loose=KEY_READ, note="the reply is the key"),
        S("PUT", "transit/keys/lc-aes/rotate", {}, loose=KEY_READ),
        S("GET", "transit/keys/lc-aes", loose=KEY_READ, note="three versions"),
        S("GET", "transit/keys/lc-aes/rotate"),
        S("POST", "transit/keys/lc-missing/rotate"),
        S(
            "POST",
            "transit/encrypt/lc-aes",
            {"plaintext": HELLO, "key_version": 1},
            save={"lc_v1": "data.ciphertext"},
        ),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v1"}),
        S(
            "POST",
            "transit/encrypt/lc-aes",
            {"plaintext": HELLO, "key_version": 2},
            save={"lc_v2": "data.ciphertext"},
        ),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v2"}),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO, "key_version": "2"}),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO, "key_version": 0}, note="0 is the latest"),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO, "key_version": 4}),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO, "key_version": -1}),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO, "key_version": "x"}),
        S(
            "POST",
            "transit/encrypt/lc-aes",
            {"batch_input": [{"plaintext": HELLO, "key_version": 2}, {"plaintext": HELLO, "key_version": 7}]},
        ),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_c1"}, note="version 1 after rotations"),
    ]


def rewrap_steps() -> list[Step]:
    return [
        S("POST", "transit/rewrap/lc-aes", {"ciphertext": "$lc_v1"}, save={"lc_rw": "data.ciphertext"}),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_rw"}, note="rewrapped under v3"),
        S(
            "PUT",
            "transit/rewrap/lc-aes",
            {"ciphertext": "$lc_v1", "key_version": 2},
            save={"lc_rw2": "data.ciphertext"},
        ),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_rw2"}),
        S(
            "POST",
            "transit/rewrap/lc-aes",
            {"batch_input": [{"ciphertext": "$lc_v1", "reference": "r"}, {"ciphertext": "junk"}, {}]},
            note="batch: one result or error per item, 200",
        ),
        S("POST", "transit/rewrap/lc-aes", {}),
        S("POST", "transit/rewrap/lc-aes", {"ciphertext": "vault:v9:AAAA"}),
        S("POST", "transit/rewrap/lc-aes", {"ciphertext": "$lc_v1", "key_version": 9}),
        S("POST", "transit/rewrap/lc-missing", {"ciphertext": "$lc_v1"}),
        S("POST", "transit/keys/lc-ec", {"type": "ecdsa-p256"}, loose=KEY_READ),
        S("POST", "transit/rewrap/lc-ec", {"ciphertext": "$lc_v1"}),
        S("GET", "transit/rewrap/lc-aes"),
    ]


def config_steps() -> list[Step]:
    return [
        S(
            "POST",
            "transit/keys/lc-aes/config",
            {"min_decryption_version": 2},
            loose=KEY_READ,
            note="v1 leaves keys",
        ),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v1"}, note="below min_decryption_version"),
        S(
            "POST",
            "transit/decrypt/lc-aes",
            {"batch_input": [{"ciphertext": "$lc_v1"}, {"ciphertext": "$lc_v2"}]},
        ),
        S("POST", "transit/rewrap/lc-aes", {"ciphertext": "$lc_v1"}),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v2"}),
        S(
            "POST",
            "transit/keys/lc-aes/config",
            {"min_decryption_version": 0},
            loose=KEY_READ,
            note="a warning",
        ),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v1"}, note="allowed again"),
        S("POST", "transit/keys/lc-aes/config", {"min_decryption_version": 9}),
        S("POST", "transit/keys/lc-aes/config", {"min_encryption_version": 9}),
        S("POST", "transit/keys/lc-aes/config", {"min_decryption_version": -1}),
        S("POST", "transit/keys/lc-aes/config", {"min_encryption_version": -1}),
        S("POST", "transit/keys/lc-aes/config", {"min_decryption_version": "x"}),
        S("PUT", "transit/keys/lc-aes/config", {"min_encryption_version": 2}, loose=KEY_READ),
        S("POST", "transit/encrypt/lc-aes", {"plaintext": HELLO, "key_version": 1}),
        S("POST", "transit/keys/lc-aes/config", {"min_decryption_version": "3"}, note="above min_encryption"),
        S("POST", "transit/keys/lc-aes/config", {"auto_rotate_period": "10m"}),
        S("POST", "transit/keys/lc-aes/config", {"auto_rotate_period": "2h"}, loose=KEY_READ),
        S("POST", "transit/keys/lc-aes/config", {"auto_rotate_period": 86400}, loose=KEY_READ),
        S("POST", "transit/keys/lc-aes/config", {"auto_rotate_period": "abc"}),
        S("POST", "transit/keys/lc-aes/config", {"auto_rotate_period": -5}),
        S("POST", "transit/keys/lc-aes/config", {"auto_rotate_period": 0}, loose=KEY_READ),
        S("POST", "transit/keys/lc-aes/config", {"deletion_allowed": "x"}),
        S("POST", "transit/keys/lc-aes/config", {}, loose=KEY_READ),
        S(
            "POST",
            "transit/keys/lc-aes/config",
            {"exportable": False, "allow_plaintext_backup": False},
            loose=KEY_READ,
        ),
        S("POST", "transit/keys/lc-missing/config", {"deletion_allowed": True}),
        S("GET", "transit/keys/lc-aes", loose=KEY_READ),
    ]


def trim_steps() -> list[Step]:
    return [
        S("POST", "transit/keys/lc-trim", {}, loose=KEY_READ),
        S(
            "POST",
            "transit/keys/lc-trim/trim",
            {"min_available_version": 1},
            note="no min_encryption_version",
        ),
        S(
            "POST",
            "transit/keys/lc-trim/trim",
            {"min_available_version": -1},
            note="a decrement is refused before the unset min_encryption_version",
        ),
        S("POST", "transit/keys/lc-aes/trim", {}),
        S("POST", "transit/keys/lc-aes/trim", {"min_available_version": 2}, note="above min_decryption"),
        S("POST", "transit/keys/lc-aes/config", {"min_decryption_version": 2}, loose=KEY_READ),
        S("POST", "transit/keys/lc-aes/trim", {"min_available_version": 3}, note="above both bounds"),
        S("POST", "transit/keys/lc-aes/trim", {"min_available_version": 0}),
        S("PUT", "transit/keys/lc-aes/trim", {"min_available_version": 2}, loose=KEY_READ),
        S("POST", "transit/keys/lc-aes/trim", {"min_available_version": 1}, note="cannot go back"),
        S(
            "POST",
            "transit/keys/lc-aes/trim",
            {"min_available_version": 2},
            loose=KEY_READ,
            note="same again",
        ),
        S("POST", "transit/keys/lc-aes/config", {"min_decryption_version": 1}),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v2"}, note="v2 survives the trim"),
        S("POST", "transit/keys/lc-missing/trim", {"min_available_version": 1}),
        S("GET", "transit/keys/lc-aes/trim"),
        S("GET", "transit/keys/lc-aes", loose=KEY_READ, note="v1 is gone"),
    ]


def datakey_steps() -> list[Step]:
    plaintext_key = {"plaintext": _b64_len(32)}
    return [
        S(
            "POST",
            "transit/datakey/plaintext/lc-aes",
            {},
            loose=plaintext_key,
            save={"lc_dk": "data.ciphertext"},
        ),
        S(
            "POST",
            "transit/decrypt/lc-aes",
            {"ciphertext": "$lc_dk"},
            loose=plaintext_key,
            note="a 256-bit key",
        ),
        S("POST", "transit/datakey/wrapped/lc-aes", {"bits": 128}, save={"lc_dk128": "data.ciphertext"}),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_dk128"}, loose={"plaintext": _b64_len(16)}),
        S("PUT", "transit/datakey/plaintext/lc-aes", {"bits": 512}, loose={"plaintext": _b64_len(64)}),
        S("POST", "transit/datakey/plaintext/lc-aes", {"key_version": 3}, loose=plaintext_key),
        S("POST", "transit/datakey/wrapped/lc-aes", {"bits": 100}),
        S("POST", "transit/datakey/other/lc-aes", {}),
        S("POST", "transit/datakey/plaintext/lc-missing", {}),
        S("POST", "transit/datakey/plaintext/lc-ec", {}),
        S("POST", "transit/datakey/plaintext/lc-aes", {"key_version": 1}),
        S("POST", "transit/datakey/plaintext/lc-aes", {"key_version": 5}),
        S("GET", "transit/datakey/plaintext/lc-aes"),
    ]


def export_steps() -> list[Step]:
    raw32 = {"keys": _exported(_decodes_to(32))}
    return [
        S("GET", "transit/export/encryption-key/lc-aes", note="not exportable"),
        S("POST", "transit/keys/lc-xaes", {"exportable": True}, loose=KEY_READ),
        S("POST", "transit/keys/lc-xaes/rotate", loose=KEY_READ),
        S("GET", "transit/export/encryption-key/lc-xaes", loose=raw32, note="every version"),
        S("GET", "transit/export/encryption-key/lc-xaes/1", loose=raw32),
        S("GET", "transit/export/encryption-key/lc-xaes/latest", loose=raw32),
        S("GET", "transit/export/encryption-key/lc-xaes/9"),
        S("GET", "transit/export/encryption-key/lc-xaes/x"),
        S("GET", "transit/export/encryption-key/lc-xaes/0"),
        S("GET", "transit/export/signing-key/lc-xaes"),
        S("GET", "transit/export/bogus/lc-xaes"),
        S("GET", "transit/export/encryption-key/lc-missing"),
        S("POST", "transit/export/encryption-key/lc-xaes"),
        S(
            "POST",
            "transit/keys/lc-xaes/config",
            {"exportable": True},
            loose=KEY_READ,
            note="already exportable",
        ),
        S("POST", "transit/keys/lc-xec", {"type": "ecdsa-p256", "exportable": True}, loose=KEY_READ),
        S(
            "GET",
            "transit/export/signing-key/lc-xec",
            loose={"keys": _exported(_pem("EC PRIVATE KEY", final_newline=False))},
        ),
        S(
            "GET",
            "transit/export/public-key/lc-xec",
            loose={"keys": _exported(_pem("PUBLIC KEY", final_newline=False))},
        ),
        S("GET", "transit/export/encryption-key/lc-xec"),
        S(
            "GET",
            "transit/export/public-key/lc-ec",
            loose={"keys": SHAPE},
            note="public keys need no exportable",
        ),
        S("GET", "transit/export/signing-key/lc-ec"),
        S("POST", "transit/keys/lc-xed", {"type": "ed25519", "exportable": True}, loose=KEY_READ),
        S("GET", "transit/export/signing-key/lc-xed", loose={"keys": _exported(_decodes_to(64))}),
        S("GET", "transit/export/public-key/lc-xed", loose={"keys": _exported(_decodes_to(32))}),
        S("POST", "transit/keys/lc-xh", {"type": "hmac", "key_size": 32, "exportable": True}, loose=KEY_READ),
        S("GET", "transit/export/hmac-key/lc-xh", loose=raw32),
        S("GET", "transit/export/encryption-key/lc-xh"),
        S("GET", "transit/export/signing-key/lc-xh"),
        S(
            "POST",
            "transit/keys/lc-xrsa",
            {"type": "rsa-4096", "exportable": True},
            loose={**KEY_READ, "supports_encryption": SHAPE, "supports_decryption": SHAPE},
        ),
        S(
            "GET",
            "transit/export/signing-key/lc-xrsa",
            loose={"keys": _exported(_pem("RSA PRIVATE KEY", final_newline=True))},
        ),
        S(
            "GET",
            "transit/export/public-key/lc-xrsa",
            loose={"keys": _exported(_pem("PUBLIC KEY", final_newline=True))},
        ),
    ]


def signing_version_steps() -> list[Step]:
    return [
        S("POST", "transit/keys/lc-ec/rotate", loose=KEY_READ),
        S("GET", "transit/keys/lc-ec", loose=KEY_READ, note="two public keys"),
        S("POST", "transit/sign/lc-ec", {"input": HELLO, "key_version": 1}, save={"lc_s1": "data.signature"}),
        S("POST", "transit/verify/lc-ec", {"input": HELLO, "signature": "$lc_s1"}),
        S("POST", "transit/sign/lc-ec", {"input": HELLO}, save={"lc_s2": "data.signature"}),
        # key_version 3 and -2: OpenBao answers 500 (KubeKMS 400 with its text; test_lifecycle_clients).
        S("POST", "transit/keys/lc-ec/config", {"min_decryption_version": 2}, loose=KEY_READ),
        S("POST", "transit/verify/lc-ec", {"input": HELLO, "signature": "$lc_s1"}, note="too old"),
        S("POST", "transit/verify/lc-ec", {"input": HELLO, "signature": "$lc_s2"}),
        S("GET", "transit/export/public-key/lc-ec", loose={"keys": SHAPE}, note="v2 only"),
        S("POST", "transit/keys/lc-h", {"type": "hmac", "key_size": 32}),
        S("POST", "transit/keys/lc-h/rotate"),
        S("POST", "transit/hmac/lc-h", {"input": HELLO, "key_version": 1}, save={"lc_h1": "data.hmac"}),
        S("POST", "transit/verify/lc-h", {"input": HELLO, "hmac": "$lc_h1"}),
        S("POST", "transit/hmac/lc-h", {"input": HELLO, "key_version": 5}),
        S("POST", "transit/keys/lc-h/config", {"min_decryption_version": 2}),
        S("POST", "transit/verify/lc-h", {"input": HELLO, "hmac": "$lc_h1"}, note="too old"),
    ]


def deletion_steps() -> list[Step]:
    return [
        S("DELETE", "transit/keys/lc-aes", note="deletion_allowed is false"),
        S("DELETE", "transit/keys/lc-missing"),
        S("POST", "transit/keys/lc-aes/config", {"deletion_allowed": True}, loose=KEY_READ),
        S("DELETE", "transit/keys/lc-aes"),
        S("GET", "transit/keys/lc-aes"),
        S("POST", "transit/decrypt/lc-aes", {"ciphertext": "$lc_v2"}),
        S("POST", "transit/keys/lc-soft", {}, loose=KEY_READ),
        S("POST", "transit/encrypt/lc-soft", {"plaintext": HELLO}, save={"lc_sc": "data.ciphertext"}),
        S("DELETE", "transit/keys/lc-soft/soft-delete", loose=KEY_READ),
        S("DELETE", "transit/keys/lc-soft/soft-delete", loose=KEY_READ, note="a warning"),
        S("GET", "transit/keys/lc-soft", loose=KEY_READ, note="soft_deleted: true"),
        S("LIST", "transit/keys", note="still listed"),
        S("POST", "transit/encrypt/lc-soft", {"plaintext": HELLO}),
        S("POST", "transit/encrypt/lc-soft", {"batch_input": [{"plaintext": HELLO}]}),
        S("POST", "transit/decrypt/lc-soft", {"ciphertext": "$lc_sc"}),
        S("POST", "transit/rewrap/lc-soft", {"ciphertext": "$lc_sc"}),
        S("POST", "transit/datakey/plaintext/lc-soft", {}),
        S("POST", "transit/keys/lc-soft/config", {"deletion_allowed": True}, loose=KEY_READ),
        S("POST", "transit/keys/lc-soft/soft-delete-restore", loose=KEY_READ),
        S("PUT", "transit/keys/lc-soft/soft-delete-restore", {}, loose=KEY_READ, note="a warning"),
        S("POST", "transit/decrypt/lc-soft", {"ciphertext": "$lc_sc"}, note="usable again"),
        S("DELETE", "transit/keys/lc-missing/soft-delete"),
        S("POST", "transit/keys/lc-missing/soft-delete-restore"),
        S("GET", "transit/keys/lc-soft/soft-delete"),
        S("DELETE", "transit/keys/lc-soft/soft-delete", loose=KEY_READ),
        S("DELETE", "transit/keys/lc-soft", note="a soft-deleted key with deletion_allowed"),
        S("GET", "transit/keys/lc-soft"),
        S("DELETE", "transit/keys/lc-soft", note="gone"),
    ]


def lifecycle_script() -> list[Step]:
    return [
        *rotation_and_key_version_steps(),
        *rewrap_steps(),
        *config_steps(),
        *trim_steps(),
        *datakey_steps(),
        *export_steps(),
        *signing_version_steps(),
        *deletion_steps(),
    ]
