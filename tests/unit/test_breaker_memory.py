"""The circuit-breaker state machine held by the in-memory store, with exact clock arithmetic
(``tests/contract`` holds it and the Redis store to the same behaviour)."""

from __future__ import annotations

import pytest

from publishing.breaker import (
    HALF_OPEN_RETRY_S,
    Admit,
    BreakerConfig,
    BreakerState,
    Defer,
    DeferReason,
    RateLimit,
    Transition,
)
from publishing.testing import FrozenClock, InMemoryBreakerStore

TARGET = "pagerduty-prod"
LEASE_S = 15.0


def config(**overrides: float) -> BreakerConfig:
    return BreakerConfig(**overrides)  # type: ignore[arg-type]


def store() -> tuple[InMemoryBreakerStore, FrozenClock]:
    clock = FrozenClock()
    return InMemoryBreakerStore(clock), clock


def fail(s: InMemoryBreakerStore, cfg: BreakerConfig, times: int) -> list[Transition]:
    return [s.record_failure(TARGET, cfg, None) for _ in range(times)]


def tripped() -> tuple[InMemoryBreakerStore, FrozenClock, BreakerConfig]:
    s, clock = store()
    cfg = config()
    fail(s, cfg, cfg.failure_threshold)
    return s, clock, cfg


def half_open(**overrides: float) -> tuple[InMemoryBreakerStore, FrozenClock, BreakerConfig]:
    s, clock = store()
    cfg = config(**overrides)
    fail(s, cfg, cfg.failure_threshold)
    clock.advance(cfg.open_timeout_s)
    return s, clock, cfg


def probe(s: InMemoryBreakerStore, cfg: BreakerConfig) -> str:
    decision = s.acquire(TARGET, cfg, LEASE_S)
    assert isinstance(decision, Admit)
    assert decision.probe_id is not None
    return decision.probe_id


def test_closed_admits_without_a_probe() -> None:
    s, _ = store()
    assert s.acquire(TARGET, config(), LEASE_S) == Admit(None)
    assert s.status(TARGET).state is BreakerState.CLOSED


@pytest.mark.parametrize("threshold", [1, 3, 5], ids=["1", "3", "5"])
def test_consecutive_failures_trip_at_the_threshold(threshold: int) -> None:
    s, clock = store()
    cfg = config(failure_threshold=threshold)
    transitions = fail(s, cfg, threshold)
    assert transitions == [Transition.NONE] * (threshold - 1) + [Transition.TRIPPED]
    status = s.status(TARGET)
    assert status.state is BreakerState.OPEN
    assert status.opened_at_s == clock()
    assert status.trips == 1


def test_a_success_in_between_resets_the_count() -> None:
    s, _ = store()
    cfg = config()
    fail(s, cfg, 4)
    assert s.record_success(TARGET, cfg, None) is Transition.NONE
    assert s.status(TARGET).consecutive_failures == 0
    assert fail(s, cfg, 4) == [Transition.NONE] * 4
    assert s.status(TARGET).state is BreakerState.CLOSED
    assert s.record_failure(TARGET, cfg, None) is Transition.TRIPPED


def test_breakers_are_per_target() -> None:
    s, _, cfg = tripped()
    assert s.acquire("other-target", cfg, LEASE_S) == Admit(None)
    assert s.status("other-target").state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("elapsed_s", "wait_s"),
    [
        pytest.param(0.0, 30.0, id="just-opened"),
        pytest.param(12.5, 17.5, id="part-way"),
        pytest.param(29.9, 0.1, id="almost-half-open"),
    ],
)
def test_open_defers_for_the_remaining_open_time(elapsed_s: float, wait_s: float) -> None:
    s, clock, cfg = tripped()
    clock.advance(elapsed_s)
    decision = s.acquire(TARGET, cfg, LEASE_S)
    assert isinstance(decision, Defer)
    assert decision.state is BreakerState.OPEN
    assert decision.wait_s == pytest.approx(wait_s)


def test_failures_reported_while_open_do_not_extend_it() -> None:
    s, clock, cfg = tripped()
    clock.advance(20)
    assert fail(s, cfg, 3) == [Transition.NONE] * 3
    decision = s.acquire(TARGET, cfg, LEASE_S)
    assert isinstance(decision, Defer)
    assert decision.wait_s == pytest.approx(10)


@pytest.mark.parametrize("probes", [1, 2, 3], ids=["1-probe", "2-probes", "3-probes"])
def test_half_open_admits_exactly_the_configured_probes(probes: int) -> None:
    s, _, cfg = half_open(half_open_probes=probes)
    ids = [probe(s, cfg) for _ in range(probes)]
    assert len(set(ids)) == probes
    for _ in range(3):
        decision = s.acquire(TARGET, cfg, LEASE_S)
        assert isinstance(decision, Defer)
        assert decision.state is BreakerState.HALF_OPEN
        assert decision.wait_s > 0
    assert s.status(TARGET).state is BreakerState.HALF_OPEN


def test_an_expired_probe_lease_frees_the_slot() -> None:
    s, clock, cfg = half_open()
    first = probe(s, cfg)
    clock.advance(LEASE_S - 1)
    assert isinstance(s.acquire(TARGET, cfg, LEASE_S), Defer)
    clock.advance(1.5)
    second = probe(s, cfg)
    assert second != first
    assert isinstance(s.acquire(TARGET, cfg, LEASE_S), Defer)


def test_success_threshold_probe_successes_close_it() -> None:
    s, _, cfg = half_open(success_threshold=2)
    assert s.record_success(TARGET, cfg, probe(s, cfg)) is Transition.NONE
    assert s.status(TARGET).state is BreakerState.HALF_OPEN
    assert s.status(TARGET).probe_successes == 1
    assert s.record_success(TARGET, cfg, probe(s, cfg)) is Transition.RECOVERED
    status = s.status(TARGET)
    assert status.state is BreakerState.CLOSED
    assert status.recoveries == 1
    assert status.consecutive_failures == 0
    assert s.acquire(TARGET, cfg, LEASE_S) == Admit(None)


def test_after_recovery_it_takes_a_full_threshold_to_trip_again() -> None:
    s, _, cfg = half_open(success_threshold=1)
    assert s.record_success(TARGET, cfg, probe(s, cfg)) is Transition.RECOVERED
    assert fail(s, cfg, cfg.failure_threshold) == [Transition.NONE] * 4 + [Transition.TRIPPED]


def test_a_failed_probe_reopens_it_for_a_full_open_timeout() -> None:
    s, clock, cfg = half_open()
    assert s.record_success(TARGET, cfg, probe(s, cfg)) is Transition.NONE
    clock.advance(3)
    assert s.record_failure(TARGET, cfg, probe(s, cfg)) is Transition.TRIPPED
    status = s.status(TARGET)
    assert status.state is BreakerState.OPEN
    assert status.opened_at_s == clock()
    assert status.probe_successes == 0
    assert status.trips == 2
    decision = s.acquire(TARGET, cfg, LEASE_S)
    assert isinstance(decision, Defer)
    assert decision.state is BreakerState.OPEN
    assert decision.wait_s == pytest.approx(cfg.open_timeout_s)


def test_release_frees_a_slot_without_a_verdict() -> None:
    s, _, cfg = half_open()
    first = probe(s, cfg)
    assert isinstance(s.acquire(TARGET, cfg, LEASE_S), Defer)
    s.release(TARGET, first)
    status = s.status(TARGET)
    assert (status.state, status.probe_successes) == (BreakerState.HALF_OPEN, 0)
    probe(s, cfg)


def test_reset_closes_it_and_keeps_the_counters() -> None:
    s, _, cfg = tripped()
    s.reset(TARGET)
    status = s.status(TARGET)
    assert status.state is BreakerState.CLOSED
    assert status.consecutive_failures == 0
    assert status.opened_at_s is None
    assert status.trips == 1
    assert s.acquire(TARGET, cfg, LEASE_S) == Admit(None)


def test_status_fields_and_dict() -> None:
    s, clock, _ = tripped()
    opened_at = clock()
    status = s.status(TARGET)
    assert status.target == TARGET
    assert status.consecutive_failures == 0  # a trip clears the count, as the Redis script does
    assert status.to_dict() == {
        "target": TARGET,
        "state": "open",
        "consecutive_failures": 0,
        "probe_successes": 0,
        "opened_at": opened_at,
        "trips": 1,
        "recoveries": 0,
    }


@pytest.mark.parametrize(
    ("state", "gauge"),
    [
        pytest.param(BreakerState.CLOSED, 0, id="closed"),
        pytest.param(BreakerState.OPEN, 1, id="open"),
        pytest.param(BreakerState.HALF_OPEN, 2, id="half-open"),
    ],
)
def test_state_values_are_those_of_the_gauge(state: BreakerState, gauge: int) -> None:
    assert int(state) == gauge


def test_unknown_target_status_is_closed() -> None:
    s, _ = store()
    status = s.status("never-seen")
    assert (status.state, status.consecutive_failures, status.trips) == (BreakerState.CLOSED, 0, 0)


@pytest.mark.parametrize(
    ("lease_s", "elapsed_s", "wait_s"),
    [
        pytest.param(15.0, 0.0, HALF_OPEN_RETRY_S, id="lease-longer-than-retry"),
        pytest.param(0.6, 0.0, 0.6, id="lease-ends-first"),
        pytest.param(1.5, 1.2, 0.3, id="lease-nearly-over"),
    ],
)
def test_a_busy_probe_slot_defers_until_the_retry_or_the_first_lease_ends(
    lease_s: float, elapsed_s: float, wait_s: float
) -> None:
    s, clock, cfg = half_open()
    assert isinstance(s.acquire(TARGET, cfg, lease_s), Admit)
    clock.advance(elapsed_s)
    decision = s.acquire(TARGET, cfg, LEASE_S)
    assert isinstance(decision, Defer)
    assert decision.reason is DeferReason.PROBE_BUSY
    assert decision.wait_s == pytest.approx(wait_s)


@pytest.mark.parametrize("reason", [DeferReason.PAUSED, DeferReason.RATE_LIMITED])
def test_every_deferral_of_a_down_target_says_how_long_it_has_been_down(reason: DeferReason) -> None:
    s, _, cfg = half_open(half_open_probes=2)
    rate = RateLimit(interval_s=10)
    assert isinstance(s.acquire(TARGET, cfg, LEASE_S, rate), Admit)
    if reason is DeferReason.PAUSED:
        s.pause(TARGET, 5)
    decision = s.acquire(TARGET, cfg, LEASE_S, rate)
    assert isinstance(decision, Defer)
    assert decision.reason is reason
    assert decision.down_for_s == pytest.approx(cfg.open_timeout_s)


def test_reset_lifts_a_pause_but_keeps_the_rate_limiters_schedule() -> None:
    s, _ = store()
    cfg, rate = config(), RateLimit(interval_s=2)
    assert isinstance(s.acquire(TARGET, cfg, LEASE_S, rate), Admit)
    s.pause(TARGET, 60)
    s.reset(TARGET)
    decision = s.acquire(TARGET, cfg, LEASE_S, rate)
    assert isinstance(decision, Defer)
    assert decision.reason is DeferReason.RATE_LIMITED
    assert decision.wait_s == pytest.approx(2)
