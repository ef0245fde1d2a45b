"""The auth decision cache: entries expire after the TTL, the size bound evicts least recently used."""

from __future__ import annotations

import pytest

from kms_api.auth.ttlcache import TtlCache, token_digest


class Clock:
    """A controllable monotonic clock (the cache takes any zero-argument callable)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entry_is_served_until_its_ttl_then_dropped() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, 100, clock=clock)
    cache.put("a", 1)
    clock.now += 9.99
    assert cache.get("a") == 1
    clock.now += 0.01
    assert cache.get("a") is None
    assert len(cache) == 0


def test_put_refreshes_the_deadline() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, 100, clock=clock)
    cache.put("a", 1)
    clock.now += 8
    cache.put("a", 2)
    clock.now += 8
    assert cache.get("a") == 2


def test_size_bound_evicts_least_recently_used() -> None:
    cache: TtlCache[str, int] = TtlCache(60.0, 3, clock=Clock())
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert cache.get("a") == 0  # "a" becomes most recently used; "b" is now the oldest
    cache.put("d", 3)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == [0, 2, 3]


def test_many_distinct_tokens_never_exceed_the_bound() -> None:
    cache: TtlCache[str, bool] = TtlCache(60.0, 50, clock=Clock())
    for i in range(1000):
        cache.put(token_digest(f"token-{i}"), True)
    assert len(cache) == 50
    assert cache.get(token_digest("token-999")) is True
    assert cache.get(token_digest("token-0")) is None


def test_zero_ttl_disables_caching() -> None:
    cache: TtlCache[str, int] = TtlCache(0.0, 10, clock=Clock())
    cache.put("a", 1)
    assert cache.get("a") is None


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        TtlCache(1.0, 0)
    with pytest.raises(ValueError):
        TtlCache(-1.0, 10)


def test_token_digest_hides_the_token() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.secret-part.signature"
    digest = token_digest(token)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "secret-part" not in digest
    assert digest == token_digest(token) and digest != token_digest(token + "x")
