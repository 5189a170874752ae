"""Rate limits and pauses: target configuration and the in-memory admission rules."""

from __future__ import annotations

import pytest

from publishing.breaker import Admit, BreakerConfig, Defer, DeferReason, RateLimit
from publishing.errors import ConfigError
from publishing.target_config import parse_target
from publishing.testing import FrozenClock, InMemoryBreakerStore

CONFIG = BreakerConfig()


def target(**extra: object):  # type: ignore[no-untyped-def]
    raw = {"name": "t", "type": "webhook", "url": "https://hooks.example.com/", **extra}
    return parse_target(raw)


@pytest.mark.parametrize(
    ("raw", "interval_s", "burst"),
    [
        ({"per_s": 5}, 0.2, 1),
        ({"per_min": 120}, 0.5, 1),
        ({"per_s": 2, "burst": 3}, 0.5, 3),
    ],
    ids=["per-second", "per-minute", "burst"],
)
def test_rate_limit_forms(raw: dict, interval_s: float, burst: int) -> None:
    limit = target(rate_limit=raw).rate_limit
    assert limit == RateLimit(interval_s=pytest.approx(interval_s), burst=burst)


@pytest.mark.parametrize(
    "raw",
    [
        {"per_s": 0},
        {"per_s": -1},
        {"per_s": 1, "per_min": 60},
        {"per_hour": 1},
        {"per_s": 1, "burst": 0},
        "fast",
    ],
    ids=["zero", "negative", "both", "unknown-unit", "no-burst", "string"],
)
def test_bad_rate_limits_are_rejected_naming_the_target(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"'t'.*rate_limit"):
        target(rate_limit=raw)


def test_providers_get_their_documented_limits_unless_disabled() -> None:
    pd = parse_target(
        {"name": "pd", "type": "pagerduty", "url": "https://e.pd/v2/enqueue", "routing_key": "k"}
    )
    slack = parse_target({"name": "s", "type": "slack", "url": "https://hooks.slack.com/services/x"})
    assert pd.rate_limit == RateLimit(interval_s=0.5)  # 120 events a minute
    assert slack.rate_limit == RateLimit(interval_s=1.0)  # one message a second
    assert target().rate_limit is None
    off = parse_target(
        {"name": "s", "type": "slack", "url": "https://hooks.slack.com/x", "rate_limit": False}
    )
    assert off.rate_limit is None


def test_the_limiter_spaces_attempts_by_the_interval() -> None:
    clock = FrozenClock()
    store = InMemoryBreakerStore(clock)
    rate = RateLimit(interval_s=0.2)
    assert isinstance(store.acquire("t", CONFIG, 5, rate), Admit)
    deferred = store.acquire("t", CONFIG, 5, rate)
    assert isinstance(deferred, Defer)
    assert deferred.reason is DeferReason.RATE_LIMITED
    assert deferred.wait_s == pytest.approx(0.2)
    clock.advance(0.2)
    assert isinstance(store.acquire("t", CONFIG, 5, rate), Admit)


def test_a_burst_admits_that_many_back_to_back() -> None:
    store = InMemoryBreakerStore(FrozenClock())
    rate = RateLimit(interval_s=1.0, burst=3)
    decisions = [store.acquire("t", CONFIG, 5, rate) for _ in range(4)]
    assert [isinstance(d, Admit) for d in decisions] == [True, True, True, False]


def test_a_pause_defers_until_it_ends() -> None:
    clock = FrozenClock()
    store = InMemoryBreakerStore(clock)
    store.pause("t", 3)
    deferred = store.acquire("t", CONFIG, 5)
    assert isinstance(deferred, Defer)
    assert deferred.reason is DeferReason.PAUSED
    assert deferred.wait_s == pytest.approx(3)
    clock.advance(3)
    assert isinstance(store.acquire("t", CONFIG, 5), Admit)
