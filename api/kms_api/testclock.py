"""TEST ONLY: the lifecycle scheduler's clock, shifted so process-level tests need not sleep.

Rotation periods are at least an hour and recovery windows days, so tests that run real
`kubekms-api` processes move the scheduler's idea of "now" instead of waiting:
`KUBEKMS_TEST_CLOCK_OFFSET` is a number of seconds added to the wall clock, or `@FILE` naming a
file that holds that number (re-read at every scheduler pass, so a test advances time in running
processes by rewriting it). Both are ignored, with a warning, unless `KUBEKMS_TEST_HOOKS` is
true as well: one stray variable in a production environment changes nothing.

Only the scheduler's clock is shifted. Rotations it makes are stamped with the time it used
(`KeyService.rotate_if_due`), so the next due time stays consistent; everything else in the
process (request timestamps, token expiry, deletion times) keeps the wall clock.
Security property: no effect without the explicit second switch; the clock only decides *when*
a key's own policy applies, never what it allows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from kms_api.settings import Settings
from kms_core.errors import ConfigError
from kms_core.schedule import Clock, utcnow

__all__ = ["scheduler_clock"]

log = logging.getLogger("kubekms.api")


def _seconds(text: str, where: str) -> float:
    try:
        return float(text.strip() or "0")
    except ValueError:
        raise ConfigError(f"KUBEKMS_TEST_CLOCK_OFFSET ({where}) must be a number of seconds") from None


def scheduler_clock(settings: Settings) -> Clock:
    """The wall clock, or (test hooks on and an offset given) the wall clock plus the offset."""
    spec = settings.test_clock_offset
    if spec is None:
        return utcnow
    if not settings.test_hooks:
        log.warning("KUBEKMS_TEST_CLOCK_OFFSET ignored: KUBEKMS_TEST_HOOKS is not set")
        return utcnow
    log.warning("TEST ONLY: the lifecycle scheduler's clock is shifted (KUBEKMS_TEST_CLOCK_OFFSET)")
    if not spec.startswith("@"):
        offset = timedelta(seconds=_seconds(spec, "value"))
        return lambda: utcnow() + offset
    path = Path(spec[1:])

    def shifted() -> datetime:
        # A missing file is no shift yet; a malformed one fails the pass (retried next pass).
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = "0"
        return utcnow() + timedelta(seconds=_seconds(text, "file"))

    return shifted
