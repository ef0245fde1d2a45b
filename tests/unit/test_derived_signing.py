"""Derived Ed25519 keys (Transit's `derived: true`, kms_core.derivation.derive_ed25519): each
context selects its own signing key, exactly as OpenBao derives it.

The known answers were produced by OpenBao 2.7.2 (`bao server -dev`): a key created with
`{"type": "ed25519", "derived": true, "exportable": true}`, its `export/signing-key` (Go's
64-byte private key, seed ‖ public key), the public key its key read shows with `?context=`, and
its signature of "hello" under that context. Ed25519 is deterministic, so equal bytes prove the
same key; tests/transit/test_cross.py checks the same against a live OpenBao.
"""

from __future__ import annotations

import base64
from typing import Final

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kms_core import derivation, material
from kms_core.errors import BadRequest
from kms_core.keyring import Keyring
from kms_core.model import Algorithm as A
from kms_core.model import SigningAlgorithm as S
from kms_core.signing_options import SigningOptions

EXPORTED: Final = base64.b64decode(
    "xGrR5/v5a6rVjOG6pgvUmTSa3jzEAGkRVYG4LMY9zGIL9BqIVO8FKMMqHPMXkIhaPBwZn96RzGvMivySPBW6HQ=="
)
# context -> (public key, signature of b"hello"), as OpenBao 2.7.2 answered them
OPENBAO: Final = {
    b"ctx1": (
        "ntYSOSNmNNsNY1qmu+VH176Wq8PMjtNp2JL8JCzCW7E=",
        "P+pLL3WkChEccT38T9Y5PqUTpD6HdEeRvL8eCe5BrsI1hw3ck4p1SnsQ8J1Nvr+YN1fjLqKVgiIkBcERLUimCg==",
    ),
    b"ctx2": (
        "Q/ja6P51ECh+D+qJlSaa69MoX3degs6LZDIEhkBEO4Q=",
        "/d2pQChgfgFKT1wJq7YJ+G9Fx6i8bE7eed3U3eMZftEE4pm+JxNfaZ9tZDlaVWw9LOTXOBaDr4F6maqsA1G5Dg==",
    ),
}
PURE: Final = SigningOptions()


def _pkcs8(seed: bytes) -> bytes:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _raw_public(spki: bytes) -> str:
    public = serialization.load_der_public_key(spki)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _openbao_ring() -> Keyring:
    return Keyring(A.ECC_NIST_ED25519, {1: _pkcs8(EXPORTED[:32])}, 1, derived=True)


@pytest.mark.parametrize("context", sorted(OPENBAO))
def test_signatures_and_public_keys_are_openbaos(context: bytes) -> None:
    public, signature = OPENBAO[context]
    ring = _openbao_ring()
    assert base64.b64encode(ring.sign(PURE, b"hello", context=context)).decode() == signature
    assert _raw_public(ring.public_key(1, context)) == public
    assert ring.verify(PURE, b"hello", base64.b64decode(signature), context=context)


def test_a_context_verifies_only_its_own_signatures() -> None:
    ring = _openbao_ring()
    signature = ring.sign(PURE, b"hello", context=b"ctx1")
    assert not ring.verify(PURE, b"hello", signature, context=b"ctx2")
    assert not ring.verify(PURE, b"other", signature, context=b"ctx1")
    # the version's own key pair never signs: its signature is not the derived one
    own = ed25519.Ed25519PrivateKey.from_private_bytes(EXPORTED[:32])
    assert own.sign(b"hello") != signature
    assert not ring.verify(PURE, b"hello", own.sign(b"hello"), context=b"ctx1")


@pytest.mark.parametrize("context", [None, b""])
def test_a_missing_context_is_refused_in_openbaos_words(context: bytes | None) -> None:
    ring = _openbao_ring()
    signature = ring.sign(PURE, b"hello", context=b"ctx1")
    with pytest.raises(BadRequest) as signing:
        ring.sign(PURE, b"hello", context=context)
    with pytest.raises(BadRequest) as verifying:
        ring.verify(PURE, b"hello", signature, context=context)
    assert signing.value.message == verifying.value.message == derivation.MISSING_CONTEXT
    # Infisical's signing algorithms carry no context: the same refusal, a 400
    with pytest.raises(BadRequest, match="missing 'context'"):
        ring.sign(S.ED25519_SHA_512, b"hello")


def test_without_a_context_the_public_key_is_the_versions_own() -> None:
    """What OpenBao's `export/public-key` returns for a derived key (it verifies nothing)."""
    ring = _openbao_ring()
    own = base64.b64encode(EXPORTED[32:]).decode()
    assert _raw_public(ring.public_key(1)) == own
    assert _raw_public(ring.public_key(1, b"ctx1")) != own


def test_each_version_derives_its_own_keys() -> None:
    first, second = material.generate(A.ECC_NIST_ED25519), material.generate(A.ECC_NIST_ED25519)
    ring = Keyring(A.ECC_NIST_ED25519, {1: first, 2: second}, 2, derived=True)
    old = ring.sign(PURE, b"m", version=1, context=b"c")
    new = ring.sign(PURE, b"m", context=b"c")
    assert old != new and ring.public_key(1, b"c") != ring.public_key(2, b"c")
    assert ring.verify(PURE, b"m", old, context=b"c") and ring.verify(PURE, b"m", new, context=b"c")
    assert ring.verify(PURE, b"m", old, version=1, context=b"c")
    assert not ring.verify(PURE, b"m", old, version=2, context=b"c")


def test_a_key_that_is_not_derived_ignores_the_context() -> None:
    ring = Keyring(A.ECC_NIST_ED25519, {1: _pkcs8(EXPORTED[:32])}, 1)
    own = ed25519.Ed25519PrivateKey.from_private_bytes(EXPORTED[:32])
    assert ring.sign(PURE, b"hello", context=b"ctx1") == own.sign(b"hello")
    assert ring.public_key(1, b"ctx1") == ring.public_key(1)


@pytest.mark.parametrize(
    ("algorithm", "derived", "convergent", "allowed"),
    [
        (A.ECC_NIST_ED25519, True, False, True),
        (A.AES_256_GCM, True, True, True),
        (A.CHACHA20_POLY1305, True, False, True),
        (A.ECC_NIST_ED25519, True, True, False),
        (A.ECC_NIST_P256, True, False, False),
        (A.RSA_2048, True, False, False),
        (A.HMAC_SHA_256, True, False, False),
        (A.AES_256_GCM, False, True, False),
    ],
)
def test_which_keys_may_be_derived(algorithm: A, derived: bool, convergent: bool, allowed: bool) -> None:
    if allowed:
        derivation.check_derivable(algorithm, derived, convergent)
    else:
        with pytest.raises(BadRequest):
            derivation.check_derivable(algorithm, derived, convergent)
