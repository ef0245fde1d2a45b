"""The operator's lifecycle pieces as plain functions: its settings, its test-only clock, the
policy decision on a KmsKey spec and the rotation schedule read from a material Secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kms_core.errors import ConfigError
from kms_core.model import Algorithm, KeyUsage
from kms_kube import layout as m
from kms_kube.layout import Policy
from kms_operator import clock, policy, rotation
from kms_operator.settings import DEFAULT_DELETION_WINDOW, Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AES = (KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM)


def secret(versions: int, made: dict[int, datetime] | None = None, trimmed: int = 0) -> dict[str, Any]:
    notes = {m.VERSION_CREATED: m.version_times_value(made or {})}
    if trimmed:
        notes[m.MIN_AVAILABLE] = str(trimmed)
    data = {m.version_key(v): base64.b64encode(b"x").decode() for v in range(max(1, trimmed), versions + 1)}
    return {"metadata": {"annotations": notes, "creationTimestamp": "2025-12-01T00:00:00Z"}, "data": data}


def kmskey(spec: dict[str, Any], in_force: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": spec, "status": {"policy": in_force} if in_force else {}}


@pytest.mark.parametrize(("raw", "seconds"), [(None, DEFAULT_DELETION_WINDOW), ("0", 0), ("7d", 7 * 86400),
                                              ("3600", 3600), ("1h30m", 5400)])
def test_deletion_window_setting(raw: str | None, seconds: int) -> None:
    env = {} if raw is None else {"KUBEKMS_DELETION_WINDOW": raw}
    assert Settings.from_env(env).deletion_window == seconds


def test_a_bad_deletion_window_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="KUBEKMS_DELETION_WINDOW"):
        Settings.from_env({"KUBEKMS_DELETION_WINDOW": "soon"})


def test_the_test_clock_offset_moves_the_operator_clock_only_when_set() -> None:
    hooks = {"KUBEKMS_TEST_HOOKS": "true"}
    try:
        clock.configure({"KUBEKMS_TEST_CLOCK_OFFSET": str(86400)})
        assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5), "needs the hooks switch"
        clock.configure({"KUBEKMS_TEST_CLOCK_OFFSET": str(86400), **hooks})
        assert clock.now() - datetime.now(UTC) > timedelta(hours=23, minutes=59)
        with pytest.raises(ConfigError):
            clock.configure({"KUBEKMS_TEST_CLOCK_OFFSET": "tomorrow", **hooks})
    finally:
        clock.configure({})
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_due_time_is_measured_from_the_current_version() -> None:
    daily = Policy(rotation_period=86400)
    assert rotation.due_at(secret(2, {1: T0, 2: T0 + timedelta(days=3)}), daily) == T0 + timedelta(days=4)
    assert rotation.due_at(secret(2, {1: T0, 2: T0}), Policy()) is None
    # Material from before the annotation: the Secret's creation time stands in.
    assert rotation.due_at(secret(1), daily) == datetime(2025, 12, 2, tzinfo=UTC)


def test_spec_bounds_are_applied_with_the_core_rules() -> None:
    ok = policy.decide(kmskey({"rotationPeriod": "24h", "minDecryptionVersion": 2}), secret(3), *AES)
    assert ok.refusal is None and ok.policy == Policy(86400, 2, 0, 0)
    asked = kmskey({"minDecryptionVersion": 4}, {"minDecryptionVersion": 2})
    too_high = policy.decide(asked, secret(3), *AES)
    assert too_high.policy.min_decryption_version == 2  # the policy in force stays
    assert too_high.refusal is not None and "latest key version is 3" in too_high.refusal
    below_trim = policy.decide(kmskey({"minDecryptionVersion": 1}, {"minDecryptionVersion": 3}),
                               secret(4, trimmed=3), *AES)
    assert below_trim.refusal is not None and "less then min available version" in below_trim.refusal


def test_version_states_in_status() -> None:
    states = policy.versions_status(secret(4, {2: T0}, trimmed=2), Policy(0, 3, 4, 2), *AES)
    assert [(s["version"], s["state"]) for s in states] == [
        (1, "destroyed"), (2, "disabled"), (3, "decrypt-only"), (4, "primary"),
    ]
    assert states[1]["createdAt"] == "2026-01-01T00:00:00Z"
