"""The breaker, rate limiter and pauses (``publishing.breaker.BreakerStore``): the in-memory
store and the Redis scripts take the same decision, with the same wait, at every step."""

from __future__ import annotations

import pytest

from publishing.adapters.redis.breaker import RedisBreakerStore
from publishing.breaker import (
    HALF_OPEN_RETRY_S,
    Admit,
    BreakerConfig,
    BreakerDecision,
    BreakerState,
    BreakerStore,
    Defer,
    DeferReason,
    RateLimit,
    Transition,
)
from publishing.testing import InMemoryBreakerStore
from tests.contract.conftest import TOLERANCE_S, Backend

TARGET = "pd"
LEASE_S = 5.0
CONFIG = BreakerConfig(failure_threshold=3, open_timeout_s=0.2, half_open_probes=1, success_threshold=2)
TWO_PROBES = BreakerConfig(failure_threshold=3, open_timeout_s=0.2, half_open_probes=2, success_threshold=2)


@pytest.fixture
def store(backend: Backend) -> BreakerStore:
    if backend.is_redis:
        return RedisBreakerStore(backend.redis, "t")
    return InMemoryBreakerStore(backend.clock)


def about(seconds: float) -> object:
    return pytest.approx(seconds, abs=TOLERANCE_S)


def trip(store: BreakerStore, config: BreakerConfig = CONFIG) -> None:
    for _ in range(config.failure_threshold):
        store.record_failure(TARGET, config, None)


def to_half_open(store: BreakerStore, backend: Backend, config: BreakerConfig = CONFIG) -> None:
    trip(store, config)
    backend.advance(config.open_timeout_s + 0.02)


def probe(store: BreakerStore, config: BreakerConfig = CONFIG, lease_s: float = LEASE_S) -> str:
    decision = store.acquire(TARGET, config, lease_s)
    assert isinstance(decision, Admit)
    assert decision.probe_id
    return decision.probe_id


def deferred(decision: BreakerDecision) -> Defer:
    assert isinstance(decision, Defer), decision
    return decision


def test_consecutive_failures_trip_at_the_threshold_and_a_success_resets_the_count(store) -> None:
    assert store.record_failure(TARGET, CONFIG, None) is Transition.NONE
    assert store.record_failure(TARGET, CONFIG, None) is Transition.NONE
    assert store.status(TARGET).consecutive_failures == 2
    assert store.record_success(TARGET, CONFIG, None) is Transition.NONE
    assert store.status(TARGET).consecutive_failures == 0
    assert [store.record_failure(TARGET, CONFIG, None) for _ in range(3)] == [
        Transition.NONE,
        Transition.NONE,
        Transition.TRIPPED,
    ]
    status = store.status(TARGET)
    assert (status.state, status.trips, status.consecutive_failures) == (BreakerState.OPEN, 1, 0)
    assert status.opened_at_s is not None


def test_a_closed_breaker_admits_clean_until_a_failure_is_counted(store) -> None:
    first = store.acquire(TARGET, CONFIG, LEASE_S)
    assert first == Admit()
    assert isinstance(first, Admit) and first.clean
    store.record_failure(TARGET, CONFIG, None)
    second = store.acquire(TARGET, CONFIG, LEASE_S)
    assert second == Admit()
    assert isinstance(second, Admit) and not second.clean


def test_an_open_breaker_defers_for_the_rest_of_its_open_time(store, backend) -> None:
    trip(store)
    first = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert (first.state, first.reason) == (BreakerState.OPEN, DeferReason.BREAKER_OPEN)
    assert first.wait_s == about(0.2)
    assert first.down_for_s == about(0)
    backend.advance(0.1)
    assert store.record_failure(TARGET, CONFIG, None) is Transition.NONE  # does not extend it
    later = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert later.wait_s == about(0.1)
    assert later.down_for_s == about(0.1)
    assert store.status(TARGET).trips == 1


def test_half_open_admits_the_configured_probes_and_defers_the_rest(store, backend) -> None:
    to_half_open(store, backend, TWO_PROBES)
    assert probe(store, TWO_PROBES) != probe(store, TWO_PROBES)
    busy = deferred(store.acquire(TARGET, TWO_PROBES, LEASE_S))
    assert (busy.state, busy.reason) == (BreakerState.HALF_OPEN, DeferReason.PROBE_BUSY)
    assert busy.wait_s == about(HALF_OPEN_RETRY_S)
    assert busy.down_for_s == about(0.22)
    assert store.status(TARGET).state is BreakerState.HALF_OPEN


def test_a_busy_probe_slot_defers_no_longer_than_until_the_first_lease_ends(store, backend) -> None:
    to_half_open(store, backend)
    probe(store, lease_s=0.3)
    busy = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert busy.wait_s == about(0.3)
    backend.advance(0.35)  # the prober died: its lease ran out
    probe(store)


def test_probe_successes_close_the_breaker(store, backend) -> None:
    to_half_open(store, backend)
    assert store.record_success(TARGET, CONFIG, probe(store)) is Transition.NONE
    assert store.status(TARGET).probe_successes == 1
    assert store.record_success(TARGET, CONFIG, probe(store)) is Transition.RECOVERED
    status = store.status(TARGET)
    assert (status.state, status.recoveries, status.probe_successes) == (BreakerState.CLOSED, 1, 0)
    assert status.opened_at_s is None
    assert store.acquire(TARGET, CONFIG, LEASE_S) == Admit()
    assert [store.record_failure(TARGET, CONFIG, None) for _ in range(3)][-1] is Transition.TRIPPED


def test_a_success_without_a_held_probe_slot_counts_for_nothing(store, backend) -> None:
    to_half_open(store, backend)
    store.acquire(TARGET, CONFIG, LEASE_S)  # makes it half-open
    assert store.record_success(TARGET, CONFIG, None) is Transition.NONE
    assert store.record_success(TARGET, CONFIG, "not-a-probe") is Transition.NONE
    assert store.status(TARGET).probe_successes == 0


def test_a_failed_probe_reopens_for_a_full_open_time_and_the_outage_keeps_its_start(store, backend) -> None:
    to_half_open(store, backend)
    assert store.record_failure(TARGET, CONFIG, probe(store)) is Transition.TRIPPED
    status = store.status(TARGET)
    assert (status.state, status.trips, status.probe_successes) == (BreakerState.OPEN, 2, 0)
    reopened = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert reopened.wait_s == about(0.2)
    assert reopened.down_for_s == about(0.22)


def test_release_frees_a_probe_slot_without_a_verdict(store, backend) -> None:
    to_half_open(store, backend)
    first = probe(store)
    deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    store.release(TARGET, first)
    status = store.status(TARGET)
    assert (status.state, status.probe_successes) == (BreakerState.HALF_OPEN, 0)
    probe(store)
    assert store.record_success(TARGET, CONFIG, first) is Transition.NONE  # released: no verdict


def test_a_pause_defers_everything_and_only_ever_lengthens(store, backend) -> None:
    store.pause(TARGET, 5)
    paused = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert (paused.reason, paused.state) == (DeferReason.PAUSED, BreakerState.CLOSED)
    assert paused.wait_s == about(5)
    store.pause(TARGET, 1)
    assert deferred(store.acquire(TARGET, CONFIG, LEASE_S)).wait_s == about(5)
    store.pause(TARGET, 8)
    assert deferred(store.acquire(TARGET, CONFIG, LEASE_S)).wait_s == about(8)
    assert store.acquire("other", CONFIG, LEASE_S) == Admit()


def test_a_pause_takes_precedence_over_an_open_breaker_and_ends_on_time(store, backend) -> None:
    trip(store)
    store.pause(TARGET, 0.1)
    paused = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert (paused.reason, paused.state) == (DeferReason.PAUSED, BreakerState.OPEN)
    assert paused.wait_s == about(0.1)
    backend.advance(0.12)
    after = deferred(store.acquire(TARGET, CONFIG, LEASE_S))
    assert after.reason is DeferReason.BREAKER_OPEN
    assert after.wait_s == about(0.08)


def test_the_rate_limiter_allows_its_burst_then_spaces_attempts(store, backend) -> None:
    rate = RateLimit(interval_s=0.2, burst=3)
    assert [store.acquire(TARGET, CONFIG, LEASE_S, rate) for _ in range(3)] == [Admit()] * 3
    limited = deferred(store.acquire(TARGET, CONFIG, LEASE_S, rate))
    assert (limited.reason, limited.state) == (DeferReason.RATE_LIMITED, BreakerState.CLOSED)
    assert limited.wait_s == about(0.2)
    # A deferred attempt takes no token: asking again does not push the next slot back.
    assert deferred(store.acquire(TARGET, CONFIG, LEASE_S, rate)).wait_s == about(0.2)
    backend.advance(0.21)
    assert store.acquire(TARGET, CONFIG, LEASE_S, rate) == Admit()
    assert deferred(store.acquire(TARGET, CONFIG, LEASE_S, rate)).wait_s == about(0.2)


def test_the_breaker_is_checked_before_the_rate_limiter(store) -> None:
    rate = RateLimit(interval_s=10)
    trip(store)
    assert deferred(store.acquire(TARGET, CONFIG, LEASE_S, rate)).reason is DeferReason.BREAKER_OPEN
    store.reset(TARGET)
    assert store.acquire(TARGET, CONFIG, LEASE_S, rate) == Admit()  # no token was taken while open


def test_reset_closes_lifts_the_pause_and_keeps_counters_and_rate_schedule(store, backend) -> None:
    rate = RateLimit(interval_s=5)
    assert store.acquire(TARGET, CONFIG, LEASE_S, rate) == Admit()
    trip(store)
    store.pause(TARGET, 30)
    store.reset(TARGET)
    status = store.status(TARGET)
    assert (status.state, status.consecutive_failures, status.opened_at_s) == (BreakerState.CLOSED, 0, None)
    assert status.trips == 1
    assert store.acquire(TARGET, CONFIG, LEASE_S) == Admit()
    assert deferred(store.acquire(TARGET, CONFIG, LEASE_S, rate)).reason is DeferReason.RATE_LIMITED
    trip(store)
    assert store.status(TARGET).trips == 2


def test_breakers_are_per_target_and_an_unknown_one_is_closed(store) -> None:
    trip(store)
    assert store.acquire("slack", CONFIG, LEASE_S) == Admit()
    status = store.status("never-seen")
    assert (status.state, status.consecutive_failures, status.trips, status.recoveries) == (
        BreakerState.CLOSED,
        0,
        0,
        0,
    )
    assert store.status(TARGET).to_dict()["state"] == "open"


@pytest.mark.redis
def test_a_breakers_keys_expire_a_week_after_their_last_use(redis_url: str) -> None:
    """A target taken out of the configuration leaves nothing in Redis for ever."""
    import redis

    from publishing.adapters.redis.breaker import KEY_TTL_S

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    store = RedisBreakerStore(client, "ttl")
    trip(store)
    key = f"ttl:breaker:{{{TARGET}}}"
    assert 0 < client.ttl(key) <= KEY_TTL_S
    client.persist(key)
    store.acquire(TARGET, CONFIG, LEASE_S)  # every use refreshes it
    assert KEY_TTL_S - 5 < client.ttl(key) <= KEY_TTL_S
    client.persist(key)
    store.record_success(TARGET, CONFIG, None)
    assert KEY_TTL_S - 5 < client.ttl(key) <= KEY_TTL_S
    store.reset(TARGET)
    assert KEY_TTL_S - 5 < client.ttl(key) <= KEY_TTL_S
    assert [k for k in client.keys("ttl:*") if client.ttl(k) < 0] == []
