"""Transit's signing options, read as OpenBao 2.7 reads them, onto the core's `SigningOptions`.

| field                    | values (OpenBao's)                                                  |
| hash_algorithm (or path, | sha1, sha2-224/256/384/512, sha3-224/256/384/512, none; `algorithm` |
| or `algorithm`)          | is the old name; default sha2-256; ed25519 ignores it               |
| prehashed                | the input is the digest (ECDSA: any length; RSA: the hash's length) |
| signature_algorithm      | RSA: pss (default) or pkcs1v15; others ignore it                    |
| salt_length              | RSA PSS: auto (default: sign with the largest salt, verify any),    |
|                          | hash (the digest's length), or a byte count (0 = auto, -1 = hash)   |
| marshaling_algorithm     | asn1 (default: DER for ECDSA, standard base64) or jws (base64url    |
|                          | without padding; ECDSA as raw r ‖ s, each the curve's size)         |

`none` is allowed for ECDSA and RSA only with `prehashed` and `signature_algorithm=pkcs1v15`
(RSA: PKCS#1 v1.5 without DigestInfo; ECDSA: the input is the digest), OpenBao's rule.

Each item's `context` (base64) is decoded for every key, as OpenBao does, and selects a derived
ed25519 key's signing key (kms_core.derivation); a derived key's signature reply carries the
public key of that context (`public_key`, or `publickey` in a batch item: OpenBao's names).

Security property: pure parsing and encoding of public values; no key material.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import pybase64
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from kms_api.transit import types
from kms_api.transit.envelope import VaultError
from kms_api.transit.inputs import Base64Error, b64decode, flag, text
from kms_core import derivation
from kms_core.algorithms import Primitive, spec_of
from kms_core.errors import KmsError
from kms_core.model import Algorithm, Key
from kms_core.signing_options import HASH_NONE, SALT_AUTO, SALT_HASH, SigningOptions

__all__ = [
    "DERIVING",
    "ContextError",
    "Marshaling",
    "SignatureError",
    "context",
    "decode",
    "encode",
    "hash_name",
    "lacks_context",
    "marshaling",
    "options",
]

# Vault's signing hash names -> hashlib's (kms_core.signing_options).
VAULT_HASHES: Final[dict[str, str]] = {"sha1": "sha1", **types.HASHES, HASH_NONE: HASH_NONE}
NONE_RULE: Final = "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_URL_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]*")
# OpenBao's text when a derived key is used without a context (a 500 there for a single input).
DERIVING: Final = f"error deriving key: {derivation.MISSING_CONTEXT}"
_CURVE_BYTES: Final = {
    Algorithm.ECC_NIST_P256: 32,
    Algorithm.ECC_NIST_P384: 48,
    Algorithm.ECC_NIST_P521: 66,
}


class SignatureError(ValueError):
    """A signature that cannot be read (its text is OpenBao's)."""


class ContextError(ValueError):
    """A `context` that is not base64 (OpenBao's text)."""

    def __init__(self) -> None:
        super().__init__("failed to base64-decode context")


def lacks_context(exc: KmsError) -> bool:
    """Whether the core refused a derived key's use for want of a context (`DERIVING` then)."""
    return exc.message == derivation.MISSING_CONTEXT


def context(value: Any) -> bytes | None:
    """An item's `context`, decoded (None when absent or empty)."""
    raw = text(value, "context")
    if not raw:
        return None
    try:
        return b64decode(raw)
    except Base64Error:
        raise ContextError() from None


@dataclass(frozen=True, slots=True)
class Marshaling:
    """The request's `marshaling_algorithm` and `salt_length`, read before the key is looked up
    (OpenBao's order: these errors come before `signing key not found`)."""

    jws: bool
    salt: int


def marshaling(body: dict[str, Any]) -> Marshaling:
    raw = body.get("marshaling_algorithm")
    name = "asn1" if raw is None else text(raw, "marshaling_algorithm")
    if name not in ("asn1", "jws"):
        raise VaultError(400, f'invalid marshaling type "{name}"')
    return Marshaling(name == "jws", _salt(body.get("salt_length")))


def _salt(raw: Any) -> int:
    """Go's rsa salt length: auto (0), hash (-1) or a count; OpenBao's texts."""
    if raw is None:
        return SALT_AUTO
    value = text(raw, "salt_length")
    lowered = value.lower()
    if lowered == "auto":
        return SALT_AUTO
    if lowered == "hash":
        return SALT_HASH
    if not _GO_INT.fullmatch(lowered):
        raise VaultError(400, f"salt length neither 'auto', 'hash', nor an int: {value}")
    count = int(lowered)
    if count < -1:
        raise VaultError(400, f"salt length is invalid: {count}")
    return {0: SALT_AUTO, -1: SALT_HASH}.get(count, count)


def hash_name(request: web.Request, body: dict[str, Any]) -> str:
    """The request's hash in Vault's words (path, `hash_algorithm`, `algorithm`, sha2-256)."""
    return (
        request.match_info.get("hash_algorithm")
        or request.match_info.get("algorithm")
        or text(body.get("hash_algorithm"), "hash_algorithm")
        or text(body.get("algorithm"), "algorithm")
        or "sha2-256"
    )


def options(request: web.Request, body: dict[str, Any], key: Key, salt: int) -> SigningOptions:
    """The core's options for a sign/verify request on `key` (its type already checked)."""
    name = hash_name(request, body)
    if name not in VAULT_HASHES:
        raise VaultError(400, f'invalid hash algorithm "{name}"')
    primitive = spec_of(key.algorithm).primitive
    if primitive not in (Primitive.EC, Primitive.RSA):
        return SigningOptions()  # ed25519 (pure: OpenBao ignores hash and prehashed), ML-DSA
    prehashed = flag(body.get("prehashed"), "prehashed")
    signature_algorithm = text(body.get("signature_algorithm"), "signature_algorithm")
    if name == HASH_NONE and (not prehashed or signature_algorithm != "pkcs1v15"):
        raise VaultError(400, NONE_RULE)
    if primitive is Primitive.RSA and signature_algorithm not in ("", "pss", "pkcs1v15"):
        # OpenBao answers this with a 500; KubeKMS with a 400 and its text.
        raise VaultError(400, f"unsupported rsa signature algorithm {signature_algorithm}")
    return SigningOptions(
        hash=VAULT_HASHES[name], prehashed=prehashed, pss=signature_algorithm != "pkcs1v15", salt=salt
    )


def encode(key: Key, signature: bytes, jws: bool) -> str:
    """A signature's base64 as Transit returns it (after `vault:vN:`)."""
    if not jws:
        return pybase64.b64encode_as_string(signature)
    size = _CURVE_BYTES.get(key.algorithm)
    if size is not None:  # ECDSA: DER -> r ‖ s
        r, s = decode_dss_signature(signature)
        signature = r.to_bytes(size) + s.to_bytes(size)
    return pybase64.urlsafe_b64encode(signature).decode().rstrip("=")


def decode(key: Key, value: str, jws: bool) -> bytes | None:
    """A signature's bytes for the core (ECDSA: DER), SignatureError with OpenBao's text for
    one that cannot be read, None for one that is well formed but cannot be valid (a JWS of
    the wrong length: OpenBao answers `valid: false`)."""
    size = _CURVE_BYTES.get(key.algorithm)
    if not jws:
        try:
            signature = b64decode(value)
        except Base64Error:
            raise SignatureError("invalid base64 signature value") from None
        if size is not None:
            try:
                decode_dss_signature(signature)
            except ValueError:
                raise SignatureError("supplied signature is invalid") from None
        return signature
    # Go's base64.RawURLEncoding: the URL alphabet, no padding.
    if not _URL_ALPHABET.fullmatch(value) or len(value) % 4 == 1:
        raise SignatureError("invalid base64 signature value")
    signature = pybase64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if size is None:
        return signature
    if len(signature) != 2 * size:
        return None
    return encode_dss_signature(int.from_bytes(signature[:size]), int.from_bytes(signature[size:]))
