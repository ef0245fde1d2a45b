"""Durations of the lifecycle policy (`kms_core.lifecycle.parse_duration`): what a rotation
period may be written as, and that no spelling of a huge or exotic value escapes as anything
but a BadRequest (a 400, never an overflow in the store or in date arithmetic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kms_core.errors import BadRequest
from kms_core.lifecycle import MAX_DURATION, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("90d", 90 * 86400), ("1h30m", 5400), ("3600", 3600), (" 7d ", 604800),
     (0, 0), (3600, 3600), ("0", 0), ("1.5h", 5400), (MAX_DURATION, MAX_DURATION)],
)  # fmt: skip
def test_valid_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "h", "24", "24 h", "-1h", "1y", "1h-", "²", "٣h", "9" * 400 + "d", "9" * 400, 10**40,
     MAX_DURATION + 1, float("inf"), float("nan"), -1, True],
)  # fmt: skip
def test_invalid_or_huge_durations_are_bad_requests(value: object) -> None:
    if value == "24":
        assert parse_duration("24") == 24  # a bare number is seconds (the control case)
        return
    with pytest.raises(BadRequest):
        parse_duration(value)  # type: ignore[arg-type]


def test_the_longest_duration_still_fits_a_date() -> None:
    assert datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=parse_duration(MAX_DURATION))


@pytest.mark.parametrize("seconds", [3600, 5400, 86400, 90 * 86400, 3601, MAX_DURATION])
def test_format_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
