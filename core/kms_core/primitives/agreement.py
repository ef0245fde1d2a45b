"""ECDH over P-256/P-384/P-521: the raw shared x-coordinate, no KDF (spec §5.5).

The peer key is a DER SubjectPublicKeyInfo on the same curve as ours. Security property: the
peer point is validated by OpenSSL on load (on-curve, not infinity); any malformed or foreign key
is a BadRequest whose text comes from the parser and names no secret (only the peer's own public
bytes were involved, and they are not echoed).
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kms_core.errors import BadRequest

_SUFFIX: Final = "Expected a DER-encoded SubjectPublicKeyInfo (SPKI) public key."
_DETAILS: Final = "Details: "


def invalid_public_key(reason: str) -> BadRequest:
    """The spec's 400 for a peer key that cannot be used."""
    return BadRequest(f"Invalid public key: {reason.rstrip('.')}. {_SUFFIX}")


def _library_reason(exc: Exception) -> str:
    # cryptography prefixes a long generic sentence; the parser's own words follow "Details: ".
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return text.split(_DETAILS, 1)[1] if _DETAILS in text else text


class Ecdh:
    """Key agreement with one EC private key; immutable and safe to share between threads."""

    __slots__ = ("_curve", "_key")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._curve = key.curve.name

    def derive(self, peer_public_key: bytes) -> bytes:
        """The shared secret with the peer (32/48/66 bytes for P-256/384/521)."""
        try:
            peer = serialization.load_der_public_key(peer_public_key)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise invalid_public_key(_library_reason(exc)) from None
        if not isinstance(peer, ec.EllipticCurvePublicKey):
            raise invalid_public_key(f"the key is not an elliptic-curve key ({type(peer).__name__})")
        if peer.curve.name != self._curve:
            raise invalid_public_key(f"the key is on curve {peer.curve.name}, expected {self._curve}")
        try:
            return self._key.exchange(ec.ECDH(), peer)
        except ValueError as exc:
            raise invalid_public_key(_library_reason(exc)) from None
