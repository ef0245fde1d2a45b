"""The test-only scheduler clock: ignored without KUBEKMS_TEST_HOOKS, a fixed offset, or an offset
re-read from a file at every call; the banner of `make run` names the deletion window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kms_api.devserver import banner
from kms_api.settings import load_settings
from kms_api.testclock import scheduler_clock
from kms_core.errors import ConfigError


def _offset(env: dict[str, str]) -> float:
    clock = scheduler_clock(load_settings([], env))
    return (clock() - datetime.now(UTC)).total_seconds()


def test_an_offset_without_the_hooks_switch_is_ignored() -> None:
    assert abs(_offset({"KUBEKMS_TEST_CLOCK_OFFSET": "86400"})) < 5
    assert abs(_offset({"KUBEKMS_TEST_CLOCK_OFFSET": "86400", "KUBEKMS_TEST_HOOKS": "false"})) < 5


def test_a_fixed_offset_and_a_file_re_read_at_every_call(tmp_path: Path) -> None:
    assert abs(_offset({"KUBEKMS_TEST_CLOCK_OFFSET": "86400", "KUBEKMS_TEST_HOOKS": "1"}) - 86400) < 5
    path = tmp_path / "clock"
    settings = load_settings([], {"KUBEKMS_TEST_CLOCK_OFFSET": f"@{path}", "KUBEKMS_TEST_HOOKS": "true"})
    clock = scheduler_clock(settings)
    assert abs(clock() - datetime.now(UTC)) < timedelta(seconds=5)  # no file yet: no shift
    path.write_text("7200")
    assert abs(clock() - datetime.now(UTC) - timedelta(hours=2)) < timedelta(seconds=5)
    path.write_text("soon")
    with pytest.raises(ConfigError, match="must be a number of seconds"):
        clock()


def test_the_banner_names_the_deletion_window() -> None:
    assert "restorable for 7d (KUBEKMS_DELETION_WINDOW)" in banner(load_settings([], {}), "t")
    zero = load_settings([], {"KUBEKMS_DELETION_WINDOW": "0"})
    assert "destroyed at once (KUBEKMS_DELETION_WINDOW=0)" in banner(zero, "t")
