"""Property tests: a ciphertext opens only if its authenticated body (IV || CT || TAG) is intact.

The version trailer is deliberately unauthenticated (spec §5.1: no AAD, the suffix is a hint), so
the exact property is: after any single-bit flip, truncation or extension, `decrypt` returns the
original plaintext if `unpack` still yields the original body byte for byte, and otherwise
raises DecryptionFailed. It never returns anything else and never raises anything else.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms_core import ciphertext
from kms_core.errors import DecryptionFailed
from kms_core.keyring import Keyring
from kms_core.model import Algorithm

RING = Keyring(Algorithm.AES_256_GCM, {v: os.urandom(32) for v in (1, 2, 3)}, 3)
V1_RING = Keyring(Algorithm.AES_256_GCM, {1: os.urandom(32)}, 1)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(ring: Keyring, original: bytes, plaintext: bytes, mutated: bytes) -> None:
    body = ciphertext.unpack(original)[0]
    if ciphertext.unpack(mutated)[0] == body:
        assert ring.decrypt(mutated) == plaintext
    else:
        with pytest.raises(DecryptionFailed):
            ring.decrypt(mutated)


blobs = st.tuples(st.sampled_from([RING, V1_RING]), st.binary(max_size=64))


@SETTINGS
@given(blobs, st.data())
def test_single_bit_flip(case: tuple[Keyring, bytes], data: st.DataObject) -> None:
    ring, plaintext = case
    blob = ring.encrypt(plaintext)
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    mutated = bytearray(blob)
    mutated[bit // 8] ^= 1 << (bit % 8)
    check(ring, blob, plaintext, bytes(mutated))
    if bit // 8 < len(blob) - 7:  # inside IV || CT || TAG: always rejected
        with pytest.raises(DecryptionFailed):
            ring.decrypt(bytes(mutated))


@SETTINGS
@given(blobs, st.data())
def test_truncation(case: tuple[Keyring, bytes], data: st.DataObject) -> None:
    ring, plaintext = case
    blob = ring.encrypt(plaintext)
    cut = data.draw(st.integers(1, len(blob)))
    from_front = data.draw(st.booleans())
    mutated = blob[cut:] if from_front else blob[:-cut]
    check(ring, blob, plaintext, mutated)


@SETTINGS
@given(blobs, st.binary(min_size=1, max_size=16), st.booleans())
def test_extension(case: tuple[Keyring, bytes], extra: bytes, at_front: bool) -> None:
    ring, plaintext = case
    blob = ring.encrypt(plaintext)
    check(ring, blob, plaintext, extra + blob if at_front else blob + extra)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_decryption_failed(junk: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        RING.decrypt(junk)


def test_trailer_only_changes_are_tolerated_but_body_changes_are_not() -> None:
    # Pins the two format-inherent cases the properties above allow, so they cannot widen silently.
    plaintext = b"pinned"
    v02 = RING.encrypt(plaintext)
    assert RING.decrypt(v02[:-4]) == plaintext  # "v02" cut: the v01 reading exposes the same body
    v01 = V1_RING.encrypt(plaintext)
    assert V1_RING.decrypt(v01 + b"\x00v02") == plaintext  # body || "v01" || X || "v02"
    assert V1_RING.decrypt(v01[:-3] + b"zzz") == plaintext  # v01 suffix is not checked
    with pytest.raises(DecryptionFailed):
        V1_RING.decrypt(v01[:-4] + b"v01")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_rsa_single_bit_flip(rsa_4096_material: bytes, data: st.DataObject) -> None:
    ring = Keyring(Algorithm.RSA_4096, {1: rsa_4096_material}, 1)
    blob = ring.encrypt(b"rsa tamper")
    byte = data.draw(st.integers(0, len(blob) - 4))  # the 512 ciphertext bytes; "v01" is unchecked
    mutated = bytearray(blob)
    mutated[byte] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecryptionFailed):
        ring.decrypt(bytes(mutated))
