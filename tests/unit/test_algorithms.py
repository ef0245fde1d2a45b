"""The algorithm registry: one spec per algorithm, and what is derived from it agrees with it.

Real material for every algorithm: generated, loaded into a keyring (the keyring is built from the
spec's primitive kind), exported in the spec's format and imported back through the spec's check.
"""

from __future__ import annotations

import pytest

from kms_core import algorithms as alg
from kms_core import material
from kms_core.algorithms import ALGORITHMS, AlgorithmSpec, Dialect, ExportFormat, Primitive
from kms_core.errors import DecryptionFailed
from kms_core.keyring import Keyring
from kms_core.model import Algorithm, KeyUsage

SPECS = {s.algorithm: s for s in ALGORITHMS}


def test_one_spec_per_algorithm_in_enum_order() -> None:
    assert [s.algorithm for s in ALGORITHMS] == list(Algorithm)


def test_wire_names_are_unique_per_dialect_and_round_trip() -> None:
    for dialect in Dialect:
        names = [s.wire[dialect] for s in ALGORITHMS if dialect in s.wire]
        assert len(names) == len(set(names)), dialect
        for spec in ALGORITHMS:
            name = alg.wire_name(spec.algorithm, dialect)
            assert (alg.by_wire_name(dialect, name) if name else None) == (spec.algorithm if name else None)
    # Infisical's names are the stored values (the AAD binds them: they never change).
    infisical = [s for s in ALGORITHMS if Dialect.INFISICAL in s.wire]
    assert all(s.wire[Dialect.INFISICAL] == s.algorithm.value for s in infisical)
    # Transit-only types: no Infisical name (the Infisical dialect cannot create or import them).
    transit_only = [s.algorithm for s in ALGORITHMS if Dialect.INFISICAL not in s.wire]
    assert transit_only == [Algorithm.CHACHA20_POLY1305, Algorithm.RSA_2048, Algorithm.RSA_3072]
    names = [alg.wire_name(a, Dialect.TRANSIT) for a in transit_only]
    assert names == ["chacha20-poly1305", "rsa-2048", "rsa-3072"]
    assert alg.by_wire_name(Dialect.TRANSIT, "aes256-gcm96") is Algorithm.AES_256_GCM
    assert alg.by_wire_name(Dialect.INFISICAL, "aes256-gcm96") is None


def test_derived_tables_follow_the_registry() -> None:
    for usage in KeyUsage:
        assert alg.ALLOWED[usage] == tuple(s.algorithm for s in ALGORITHMS if usage in s.usages)
    assert alg.SYMMETRIC == (Algorithm.AES_256_GCM, Algorithm.AES_128_GCM)
    hmacs = {s.algorithm for s in ALGORITHMS if s.primitive is Primitive.HMAC}
    assert set(alg.HMAC) == set(alg.HMAC_HASH) == hmacs
    assert {a for a, _ in alg.SIGNING_ALGORITHMS.items()} == set(alg.ASYMMETRIC_SIGNING)
    for spec in ALGORITHMS:
        assert alg.is_asymmetric(spec.algorithm) is (spec.key_bytes == 0)
        assert spec.rotatable is alg.is_symmetric(spec.algorithm)


@pytest.mark.parametrize("spec", [s for s in ALGORITHMS if s.algorithm is not Algorithm.RSA_4096],
                         ids=lambda s: s.algorithm.value)  # fmt: skip
def test_material_keyring_export_and_import_follow_the_spec(spec: AlgorithmSpec) -> None:
    raw = material.generate(spec.algorithm)
    if spec.key_bytes:
        assert len(raw) == spec.key_bytes
    ring = Keyring(spec.algorithm, {1: raw}, 1)
    assert ring.is_slow is spec.slow
    if spec.primitive in alg.AEADS:
        assert ring.decrypt(ring.encrypt(b"x")) == b"x"
        assert ring.decrypt(ring.encrypt(b"x", aad=b"ctx"), aad=b"ctx") == b"x"
        with pytest.raises(DecryptionFailed):
            ring.decrypt(ring.encrypt(b"x", aad=b"ctx"), aad=b"other")
    elif spec.primitive is Primitive.HMAC:
        assert ring.verify_mac(b"m", ring.generate_mac(b"m"))
    else:
        signing = spec.signing[0]  # each family's first takes the message itself
        assert ring.verify(signing, b"m", ring.sign(signing, b"m", False), False)
    exported = ring.export_private()
    assert exported.startswith(b"-----BEGIN PRIVATE KEY-----") is (spec.export is ExportFormat.PKCS8_PEM)
    assert material.parse_import(spec.algorithm, exported) == raw
