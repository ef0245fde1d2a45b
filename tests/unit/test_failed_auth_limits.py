"""The failed-authentication budget per client address (`kms_api.http.limits.FailedAuthLimiter`)."""

from __future__ import annotations

import pytest

from kms_api.http.error_replies import status_of
from kms_api.http.limits import AddressAttempt, FailedAuthLimiter
from kms_core.errors import RateLimited


def _limiter(now: list[float], rate: float = 0.5, burst: int = 3) -> FailedAuthLimiter:
    return FailedAuthLimiter(rate, burst, clock=lambda: now[0])


def test_failures_spend_the_budget_and_checks_alone_do_not() -> None:
    now = [0.0]
    limiter = _limiter(now)
    for _ in range(10):
        limiter.check("a")  # checks are free: only failures spend
    for _ in range(3):
        limiter.check("a")
        limiter.spend("a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert status_of(refused.value) == (429, "RateLimitExceeded")
    assert refused.value.retry_after == pytest.approx(2.0)  # one token at 0.5/s
    assert "Too many failed authentication attempts" in refused.value.message
    limiter.check("b")  # budgets are per address
    now[0] = 2.0
    limiter.check("a")
    limiter.spend("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_concurrent_failures_are_paid_back_before_the_next_attempt() -> None:
    """Failures that all passed `check` together leave a debt, so the long-run rate stays bounded."""
    now = [0.0]
    limiter = _limiter(now, rate=1.0, burst=3)
    for _ in range(6):
        limiter.spend("a")  # six attempts that raced past one check
    now[0] = 3.5  # 3.5 tokens back: the balance is 0.5, still short of one attempt
    with pytest.raises(RateLimited):
        limiter.check("a")
    now[0] = 4.0
    limiter.check("a")
    for _ in range(100):
        limiter.spend("a")
    now[0] = 4.0 + 3.9  # the debt is bounded at -burst (-3): 4 seconds back to one attempt
    with pytest.raises(RateLimited):
        limiter.check("a")
    now[0] = 4.0 + 4.0
    limiter.check("a")


def test_holds_count_against_the_budget_until_released() -> None:
    now = [0.0]
    limiter = _limiter(now, burst=2)
    first, second, third = (AddressAttempt(limiter, "a") for _ in range(3))
    first.hold()
    second.hold()
    with pytest.raises(RateLimited):
        third.hold()  # two costly checks in flight use the whole budget
    first.release()
    limiter.spend("a")  # the first one failed
    with pytest.raises(RateLimited):
        third.hold()
    second.release()  # the second one succeeded: nothing spent
    third.hold()
    third.release()


def test_addresses_with_a_whole_budget_leave_no_entry() -> None:
    now = [0.0]
    limiter = _limiter(now, rate=1.0, burst=2)
    attempt = AddressAttempt(limiter, "a")
    attempt.hold()
    attempt.release()
    limiter.spend("b")
    now[0] = 5.0
    limiter.check("b")  # refilled: forgotten
    assert len(limiter._buckets) == 0


def test_settings_flags_win_over_the_environment_and_are_range_checked() -> None:
    from kms_api.settings import load_settings
    from kms_core.errors import ConfigError

    defaults = load_settings([], {})
    assert (defaults.auth_fail_burst, defaults.auth_fail_rate) == (10, 0.1)
    # Much tighter than the traffic limit: failures are not traffic.
    assert defaults.auth_fail_burst < defaults.rate_limit_burst
    env = {"KUBEKMS_AUTH_FAIL_BURST": "4", "KUBEKMS_AUTH_FAIL_RATE": "0.5"}
    assert (load_settings([], env).auth_fail_burst, load_settings([], env).auth_fail_rate) == (4, 0.5)
    flagged = load_settings(["--auth-fail-burst", "2", "--auth-fail-rate", "0"], env)
    assert (flagged.auth_fail_burst, flagged.auth_fail_rate) == (2, 0.0)
    for bad in (["--auth-fail-rate", "-1"], ["--auth-fail-burst", "0"]):
        with pytest.raises(ConfigError, match="auth fail"):
            load_settings(bad, {})


def test_default_traffic_limit_does_not_throttle_one_fast_client() -> None:
    """One identity at 30,000 requests/s for five seconds (more than one worker serves) gets no
    429 under the default settings; the failed-authentication budget stays on and tight."""
    from kms_api.http.limits import RateLimiter
    from kms_api.settings import load_settings

    defaults = load_settings([], {})
    now = [0.0]
    limiter = RateLimiter(defaults.rate_limit_rps, defaults.rate_limit_burst, clock=lambda: now[0])
    for i in range(150_000):
        now[0] = i / 30_000
        limiter.check("identity:app", "identity")
    assert defaults.auth_fail_rate > 0 and defaults.auth_fail_burst <= 10
    # Still a limit: an identity far beyond any process's capacity is refused.
    now[0] += 0.001
    with pytest.raises(RateLimited):
        for _ in range(int(defaults.rate_limit_burst) + 1):
            limiter.check("identity:runaway", "identity")
