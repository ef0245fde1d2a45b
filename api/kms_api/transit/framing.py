"""Transit's framing of ciphertexts, signatures and HMACs, and its conversion to Infisical's.

Transit: `vault:v<N>:` + base64(bytes), where for AES-GCM the bytes are nonce(12) ‖ CT ‖ TAG(16)
(Go's `gcm.Seal(nonce, nonce, ...)`), for RSA the OAEP ciphertext, for signatures and HMACs the
raw signature or MAC.

Infisical (kms_core.ciphertext): the *same* AES-GCM bytes IV(12) ‖ CT ‖ TAG(16), followed by the
trailer `"v01"` for version 1 or `u32be(N) ‖ "v02"` for version N > 1 (RSA: OAEP ‖ `"v01"`).

So converting is re-framing, never re-encrypting: Transit -> Infisical is
`ciphertext.pack(base64decode(body), N)`, Infisical -> Transit is `ciphertext.unpack(blob)` then
`vault:v<N or 1>:` + base64(raw). A ciphertext of either dialect decrypts through the other once
re-framed.

Security property: parsing only splits and decodes; the version is a hint the keyring checks
against the key's versions, and authentication is the AEAD's (a forged frame decrypts nothing).
"""

from __future__ import annotations

from typing import Final

import pybase64

from kms_api.transit.inputs import b64decode
from kms_core import ciphertext

__all__ = ["Frame", "FrameError", "parse", "split", "to_infisical", "to_transit", "vault"]

PREFIX: Final = "vault:"


class FrameError(ValueError):
    """A malformed `vault:v<N>:` value; the text is OpenBao's after `invalid <what>: `."""


class Frame:
    """A parsed `vault:v<N>:<base64>` value: its version and its raw bytes."""

    __slots__ = ("payload", "version")

    def __init__(self, version: int, payload: bytes) -> None:
        self.version = version
        self.payload = payload


def vault(version: int, payload: bytes) -> str:
    """`vault:v<version>:` + standard base64 of `payload`."""
    return f"vault:v{version}:" + pybase64.b64encode_as_string(payload)


def split(value: str) -> tuple[int, str]:
    """(version, base64 part) of a framed value; FrameError with OpenBao's texts."""
    if not value.startswith(PREFIX):
        raise FrameError("no prefix")
    rest = value[len(PREFIX) :]
    head, sep, body = rest.partition(":")
    if not sep or not head.startswith("v"):
        raise FrameError("no prefix")
    digits = head[1:]
    if not digits.isascii() or not digits.isdigit():
        raise FrameError("version number could not be decoded")
    return int(digits), body


def parse(value: str) -> Frame:
    """Split and decode (Base64Error from the payload propagates to the caller's wording)."""
    version, body = split(value)
    return Frame(version, b64decode(body))


def to_infisical(frame: Frame) -> bytes:
    """The Infisical wire ciphertext of a Transit one (the same bytes plus Infisical's trailer)."""
    return ciphertext.pack(frame.payload, max(frame.version, 1))


def to_transit(blob: bytes) -> str:
    """The Transit ciphertext of an Infisical one (its trailer becomes the `v<N>` prefix)."""
    raw, version = ciphertext.unpack(blob)
    return vault(version or 1, raw)

