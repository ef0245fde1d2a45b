"""AES-GCM encryption counts per key version, and the warning well before random nonces wear out."""

from __future__ import annotations

import logging
import os

import pytest
from prometheus_client import REGISTRY

from kms_core.gcmusage import GCM_USAGE, NONCE_LIMIT, STRIDE, WARN_AT, GcmUsage
from kms_core.keyring import Keyring
from kms_core.model import Algorithm

KEY_ID = "3f1c2a8e-0000-4000-8000-000000000001"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "kubekms.keys" and r.levelno == logging.WARNING]


def test_defaults_warn_well_before_the_nonce_bound() -> None:
    assert NONCE_LIMIT == 2**32 and WARN_AT == 2**30 and WARN_AT % STRIDE == 0
    assert (GCM_USAGE.warn_at, GCM_USAGE.stride) == (WARN_AT, STRIDE)


def test_encryptions_are_counted_per_version_and_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kubekms.keys")
    usage = GcmUsage(warn_at=8, stride=4)
    materials = {1: os.urandom(32), 2: os.urandom(32)}
    ring = Keyring(Algorithm.AES_256_GCM, {1: materials[1]}, 1, usage=usage.counter(KEY_ID, 1))
    blobs = [ring.encrypt(b"x") for _ in range(7)]
    for blob in blobs:
        ring.decrypt(blob)  # decryptions use no nonce: not counted
    assert usage.count(KEY_ID, 1) == 7 and _warnings(caplog) == []

    ring.encrypt(b"x")
    [warning] = _warnings(caplog)
    message = warning.getMessage()
    assert KEY_ID in message and "version 1" in message and "rotate" in message
    assert (warning.key_id, warning.version, warning.encryptions) == (KEY_ID, 1, 8)  # type: ignore[attr-defined]
    assert materials[1].hex() not in message

    # A keyring rebuilt for the same version (cache eviction) continues the same count.
    again = Keyring(Algorithm.AES_256_GCM, {1: materials[1]}, 1, usage=usage.counter(KEY_ID, 1))
    for _ in range(12):
        again.encrypt(b"x")
    assert usage.count(KEY_ID, 1) == 20 and len(_warnings(caplog)) == 1
    assert REGISTRY.get_sample_value("kubekms_aes_gcm_encryptions_max") == 20
    assert REGISTRY.get_sample_value("kubekms_aes_gcm_key_versions_over_threshold") == 1

    # Rotation: the new version starts its own count; the old one is only decrypted with.
    rotated = Keyring(Algorithm.AES_256_GCM, materials, 2, usage=usage.counter(KEY_ID, 2))
    rotated.encrypt(b"x")
    assert (usage.count(KEY_ID, 1), usage.count(KEY_ID, 2)) == (20, 1)
    usage.forget(KEY_ID)
    assert usage.count(KEY_ID, 1) == 0


def test_metric_labels_never_hold_key_ids() -> None:
    usage = GcmUsage(warn_at=2, stride=2)
    ring = Keyring(Algorithm.AES_128_GCM, {1: os.urandom(16)}, 1, usage=usage.counter(KEY_ID, 1))
    for _ in range(4):
        ring.encrypt(b"x")
    for family in REGISTRY.collect():
        if family.name.startswith("kubekms_aes_gcm"):
            assert all(sample.labels == {} for sample in family.samples)


def test_stride_must_be_a_power_of_two_below_the_threshold() -> None:
    for warn_at, stride in ((8, 3), (4, 8), (8, 0)):
        with pytest.raises(ValueError):
            GcmUsage(warn_at=warn_at, stride=stride)
