"""The operator's clock: when rotations are due, when versions were made, when deleted material
is purged.

`KUBEKMS_TEST_CLOCK_OFFSET` (seconds, may be negative; TEST-ONLY) moves this clock away from the
wall clock, so that tests can run a real operator process "days later" instead of sleeping. It
is read once at start, never set by the chart, honoured only together with
`KUBEKMS_TEST_HOOKS=true` (as in the API) and logged at WARNING when present: a production
operator with an offset would rotate and purge at the wrong times.

Security property: time only; an offset can make rotations and purges early or late, never
expose material (so it is a test aid, not a security boundary).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from kms_core.errors import ConfigError

TEST_OFFSET_ENV = "KUBEKMS_TEST_CLOCK_OFFSET"
TEST_HOOKS_ENV = "KUBEKMS_TEST_HOOKS"
_offset = timedelta(0)


def configure(env: Mapping[str, str] | None = None) -> None:
    """Read the test-only offset from the environment (once, at start)."""
    global _offset
    env = os.environ if env is None else env
    raw = env.get(TEST_OFFSET_ENV, "").strip()
    if not raw:
        _offset = timedelta(0)
        return
    log = logging.getLogger("kubekms.operator")
    if env.get(TEST_HOOKS_ENV, "").strip().lower() not in ("1", "true", "yes", "on"):
        _offset = timedelta(0)
        log.warning("%s is ignored: honoured only with %s=true (tests)", TEST_OFFSET_ENV, TEST_HOOKS_ENV)
        return
    try:
        _offset = timedelta(seconds=float(raw))
    except ValueError as e:
        raise ConfigError(f"{TEST_OFFSET_ENV} must be a number of seconds") from e
    log.warning(
        "%s=%s: the operator's clock is offset from the wall clock (for tests only)", TEST_OFFSET_ENV, raw
    )


def now() -> datetime:
    """The operator's current time (UTC)."""
    return datetime.now(tz=UTC) + _offset
