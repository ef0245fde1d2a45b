"""The Transit dialect's pure parts: the framing conversion, Go's base64 error offsets (the same
offsets OpenBao answers, tests/transit/script.py), the LIST rewrite and the error mapping."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_api.http.protocol import list_as_get
from kms_api.transit import envelope, framing
from kms_api.transit.inputs import Base64Error, b64decode, flag, text
from kms_core import ciphertext
from kms_core.errors import (
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    TokenError,
    Unauthorized,
    ValidationFailure,
)


@pytest.mark.parametrize("version", [1, 2, 7, 2**32 - 1])
def test_reframing_keeps_the_aes_gcm_bytes(version: int) -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    raw = nonce + AESGCM(key).encrypt(nonce, b"payload", None)
    blob = ciphertext.pack(raw, version)
    transit = framing.to_transit(blob)
    assert transit.startswith(f"vault:v{version}:")
    frame = framing.parse(transit)
    assert (frame.version, frame.payload) == (version, raw)
    assert framing.to_infisical(frame) == blob
    assert AESGCM(key).decrypt(frame.payload[:12], frame.payload[12:], None) == b"payload"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("garbage", "no prefix"),
        ("vault:AAAA", "no prefix"),
        ("vault:x1:AAAA", "no prefix"),
        ("vault:vx:AAAA", "version number could not be decoded"),
        ("vault:v-1:AAAA", "version number could not be decoded"),
        ("vault:v\u0661:AAAA", "version number could not be decoded"),  # a non-ASCII digit
    ],
)
def test_malformed_frames(value: str, problem: str) -> None:
    with pytest.raises(framing.FrameError, match=problem):
        framing.split(value)


@pytest.mark.parametrize(
    ("value", "offset"),
    [("!!", 0), ("5", 0), ("not base64!", 3), ("aGVsbG8", 4), ("aGVsbG8=x", 8), ("aG=", 3), ("====", 0)],
)
def test_base64_errors_name_go_offsets(value: str, offset: int) -> None:
    with pytest.raises(Base64Error) as caught:
        b64decode(value)
    assert caught.value.offset == offset
    assert str(caught.value) == f"illegal base64 data at input byte {offset}"


def test_base64_skips_newlines_like_go() -> None:
    assert b64decode("aGVs\nbG8=\r\n") == b"hello"
    assert b64decode("") == b""


def test_weakly_typed_fields() -> None:
    assert text(5, "f") == "5" and text(None, "f") == "" and text(True, "f") == "1"
    assert flag("true", "f") is True and flag("0", "f") is False and flag(None, "f") is False
    with pytest.raises(envelope.VaultError):
        flag("maybe", "f")
    with pytest.raises(envelope.VaultError):
        text({"a": 1}, "f")


def test_list_is_read_as_get_with_list_true() -> None:
    rewritten = list_as_get(b"LIST /v1/transit/keys HTTP/1.1\r\n")
    assert rewritten == b"GET /v1/transit/keys?list=true HTTP/1.1\r\n"
    assert list_as_get(b"LIST /v1/x?a=b HTTP/1.1\r\n") == b"GET /v1/x?a=b&list=true HTTP/1.1\r\n"
    for untouched in (b"LIST /api/v1/kms/keys HTTP/1.1\r\n", b"GET /v1/x HTTP/1.1\r\n", b"LIST /v1/"):
        assert list_as_get(untouched) == untouched


@pytest.mark.parametrize(
    ("error", "status", "errors"),
    [
        (Unauthorized("Token missing"), 403, ["permission denied"]),
        (TokenError("bad"), 403, ["permission denied"]),
        (PermissionDenied("encrypt"), 403, ["permission denied"]),
        (NotFound("Key not found"), 404, ["Key not found"]),
        (BadRequest("Key is disabled"), 400, ["Key is disabled"]),
        (ValidationFailure([]), 400, ["Validation failed"]),
        (RateLimited("slow down", 2.0), 429, ["slow down"]),
        (envelope.VaultError(404), 404, []),
        (envelope.VaultError(405, envelope.UNSUPPORTED_OPERATION), 405, [envelope.UNSUPPORTED_OPERATION]),
    ],
)
def test_every_failure_has_vaults_status_and_errors(error: Exception, status: int, errors: list[str]) -> None:
    found = envelope._status(error)  # type: ignore[arg-type]
    assert found[:2] == (status, errors)
