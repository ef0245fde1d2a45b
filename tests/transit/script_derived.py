"""Differential steps of derived ed25519 keys (tests/transit/script.py's conventions): create,
key read without and with `?context=`, sign and verify with a context (right, wrong, missing in a
batch item, not base64), batch items with a context each, jws, rotation and `key_version`, the
decryption bound, exports, and a key that is not derived given a context.

Requests OpenBao answers with a 500 (a single sign or verify without a context, convergent
ed25519) are not here: tests/transit/test_derived_ed25519.py checks KubeKMS's 400 against
OpenBao's text.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final

from differential import B64, SHAPE, Step
from script import HELLO, HI, KEY_READ, S
from script_signing import JWS_READ

CTX: Final = base64.b64encode(b"tenant-1").decode()
OTHER: Final = base64.b64encode(b"tenant-2").decode()
RAW_PUBLIC: Final = re.compile(r"[A-Za-z0-9+/]{43}=")  # base64 of a 32-byte ed25519 public key


def _publics(check: Any) -> Any:
    """A key read's `keys` matcher: every version's public key satisfies `check`."""
    return lambda keys: (
        isinstance(keys, dict) and bool(keys) and all(check(v["public_key"]) for v in keys.values())
    )


NO_PUBLIC: Final = {"keys": _publics(lambda p: p == "")}
PUBLIC: Final = {"keys": _publics(lambda p: isinstance(p, str) and RAW_PUBLIC.fullmatch(p) is not None)}
BATCH_PUBLIC: Final = {"publickey": B64}


def _sign(key: str, tag: str, context: str = CTX, note: str = "", **extra: Any) -> Step:
    body = {"input": HELLO, "context": context, **extra}
    return S("POST", f"transit/sign/{key}", body, save={tag: "data.signature"}, note=note)


def _verify(
    key: str, tag: str, context: str | None = CTX, data: str = HELLO, note: str = "", **extra: Any
) -> Step:
    body = {"input": data, "signature": f"${tag}", **extra}
    if context is not None:
        body["context"] = context
    return S("POST", f"transit/verify/{key}", body, note=note)


def derived_signing_steps() -> list[Step]:
    key = "dv-ed"
    batch_sign = {
        "batch_input": [
            {"input": HELLO, "context": CTX, "reference": "a"},
            {"input": HI, "context": OTHER, "reference": "b"},
            {"input": HELLO, "reference": "no context"},
            {"input": HELLO, "context": "!!", "reference": "not base64"},
        ]
    }
    batch_verify = {
        "batch_input": [
            {"input": HELLO, "context": CTX, "signature": "$dv-b0"},
            {"input": HI, "context": OTHER, "signature": "$dv-b1"},
            {"input": HELLO, "context": OTHER, "signature": "$dv-b0", "reference": "wrong context"},
            {"input": HELLO, "signature": "$dv-b0", "reference": "no context"},
            {"input": HELLO, "context": "!!", "signature": "$dv-b0"},
        ]
    }
    return [
        S("POST", f"transit/keys/{key}", {"type": "ed25519", "derived": True}, loose=NO_PUBLIC),
        S("GET", f"transit/keys/{key}", loose=NO_PUBLIC, note="no context: no public key"),
        S("GET", f"transit/keys/{key}?context={CTX}", loose=PUBLIC, note="the context's public key"),
        S("GET", f"transit/keys/{key}?context=!!", note="context not base64"),
        _sign(key, "dv-s1"),
        _verify(key, "dv-s1"),
        _verify(key, "dv-s1", OTHER, note="wrong context"),
        _verify(key, "dv-s1", data=HI, note="other input"),
        _verify(key, "dv-s1", "!!", note="context not base64"),
        S("POST", f"transit/sign/{key}", {"input": HELLO, "context": "!!"}, note="context not base64"),
        S(
            "POST",
            f"transit/sign/{key}",
            {"input": HELLO, "context": CTX, "marshaling_algorithm": "jws"},
            save={"dv-jws": "data.signature"},
            loose=JWS_READ,
        ),
        _verify(key, "dv-jws", marshaling_algorithm="jws"),
        S(
            "POST",
            f"transit/sign/{key}",
            batch_sign,
            save={"dv-b0": "data.batch_results.0.signature", "dv-b1": "data.batch_results.1.signature"},
            loose=BATCH_PUBLIC,
        ),
        S("POST", f"transit/verify/{key}", batch_verify),
        S(
            "POST",
            f"transit/sign/{key}",
            {"batch_input": [{"input": HELLO}]},
            note="every item lacks a context",
        ),
        S("POST", f"transit/keys/{key}/rotate", loose=NO_PUBLIC),
        S("GET", f"transit/keys/{key}?context={OTHER}", loose=PUBLIC, note="two versions, two keys"),
        _sign(key, "dv-v1", key_version=1),
        _sign(key, "dv-v2"),
        _verify(key, "dv-v1"),
        _verify(key, "dv-v2"),
        _verify(key, "dv-v2", OTHER, note="wrong context"),
        S("POST", f"transit/keys/{key}/config", {"min_decryption_version": 2}, loose=NO_PUBLIC),
        _verify(key, "dv-v1", note="too old"),
        _verify(key, "dv-v2"),
        S("GET", f"transit/export/public-key/{key}", loose={"keys": SHAPE}, note="the version's own key"),
        S("GET", f"transit/export/signing-key/{key}", note="not exportable"),
        S(
            "POST",
            "transit/keys/dv-edx",
            {"type": "ed25519", "derived": True, "exportable": True},
            loose=NO_PUBLIC,
        ),
        S("GET", "transit/export/signing-key/dv-edx", loose={"keys": SHAPE}),
        S("POST", "transit/keys/dv-plain", {"type": "ed25519"}, loose=KEY_READ),
        S("GET", f"transit/keys/dv-plain?context={CTX}", loose=PUBLIC, note="a context changes nothing"),
        _sign("dv-plain", "dv-p", note="a context is ignored by a key that is not derived"),
        _verify("dv-plain", "dv-p", OTHER),
        S("POST", "transit/sign/dv-plain", {"input": HELLO, "context": "!!"}, note="but must be base64"),
        S("POST", "transit/keys/dv-p256", {"type": "ecdsa-p256"}, loose=KEY_READ),
        _sign("dv-p256", "dv-ec"),
        _verify("dv-p256", "dv-ec", OTHER, note="ecdsa ignores the context too"),
    ]
