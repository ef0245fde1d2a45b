"""Leader-election settings (KUBEKMS_LEADER_ELECTION, KUBEKMS_LEASE_*) and the retry policy's
error classes; the election itself runs against real processes in
tests/integration/test_operator_ha.py."""

from __future__ import annotations

import pytest

from kms_core.errors import ConfigError
from kms_kube.client import ApiError, Conflict, KubeUnavailable, NotFound, status_error
from kms_operator import rejections
from kms_operator.leadership import LeaseConfig


def test_defaults_follow_client_go() -> None:
    cfg = LeaseConfig.from_env("kubekms", {"POD_NAME": "kubekms-operator-7d9f-abcde"})
    assert cfg.enabled and cfg.name == "kubekms-operator" and cfg.namespace == "kubekms"
    assert cfg.identity == "kubekms-operator-7d9f-abcde"
    assert (cfg.duration, cfg.renew, cfg.deadline) == (15, 5, 10)


def test_identity_without_pod_name_is_unique_per_process() -> None:
    a, b = LeaseConfig.from_env("ns", {}), LeaseConfig.from_env("ns", {})
    assert a.identity != b.identity


@pytest.mark.parametrize(
    "env",
    [
        {"KUBEKMS_LEADER_ELECTION": "maybe"},
        {"KUBEKMS_LEASE_DURATION": "soon"},
        {"KUBEKMS_LEASE_DURATION": "6", "KUBEKMS_LEASE_RENEW": "5"},  # no time left to give up in
        {"KUBEKMS_LEASE_RENEW": "0"},
    ],
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        LeaseConfig.from_env("ns", env)


def test_disabled() -> None:
    assert not LeaseConfig.from_env("ns", {"KUBEKMS_LEADER_ELECTION": "false"}).enabled


def test_which_errors_are_rejections() -> None:
    cel = {"reason": "Invalid", "message": "x", "details": {"causes": [{"reason": "FieldValueInvalid"}]}}
    failed_test = {"details": {"causes": [{"reason": "UnexpectedServerResponse", "message": "test failed"}]}}
    assert rejections.is_rejection(status_error(cel, 422, "PATCH"))
    assert rejections.is_rejection(status_error({"reason": "Forbidden"}, 403))
    assert rejections.is_rejection(status_error({"reason": "RequestEntityTooLarge"}, 413))
    assert not rejections.is_rejection(status_error(failed_test, 422, "PATCH"))  # a conflict
    assert isinstance(status_error(failed_test, 422, "PATCH"), Conflict)
    for error in (
        ApiError(503, "ServiceUnavailable", ""),
        ApiError(429, "TooManyRequests", ""),
        ApiError(401, "Unauthorized", ""),
        NotFound(404, "NotFound", ""),
        KubeUnavailable("down"),
    ):
        assert not rejections.is_rejection(error), error


def test_backoff_doubles_and_is_capped() -> None:
    assert [rejections.backoff(2, n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert rejections.backoff(2, 10_000) == 60


def test_attempts_are_counted_per_desire() -> None:
    counts = rejections.Rejections()
    key = {"metadata": {"uid": "u", "generation": 1}}
    desire = rejections.desire_of(key)
    assert [counts.record(("ns", "k"), desire) for _ in range(3)] == [1, 2, 3]
    changed = rejections.desire_of({"metadata": {"uid": "u", "generation": 2}})
    assert counts.attempts(("ns", "k"), changed) == 0 and counts.record(("ns", "k"), changed) == 1
    rotate = rejections.desire_of(
        {"metadata": {"uid": "u", "generation": 2, "annotations": {"kubekms.io/rotate": "r"}}}
    )
    assert rotate != changed
    counts.clear(("ns", "k"))
    assert counts.attempts(("ns", "k"), changed) == 0


def test_messages_are_bounded() -> None:
    text = rejections.describe(ApiError(422, "Invalid", "y" * 5000))
    assert text.startswith("the API server rejected a write (422 Invalid): yyy") and len(text) <= 900
