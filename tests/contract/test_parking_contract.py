"""Parked jobs (``publishing.parking.ParkingLot``): the in-memory lot and the Redis scripts park,
claim and confirm alike, on their own clock (the fake's, or Redis's ``TIME``)."""

from __future__ import annotations

from typing import Any

import pytest

from publishing.adapters.redis.breaker import RedisBreakerStore
from publishing.adapters.redis.parking import RedisParkingLot
from publishing.alert import parse_alertmanager
from publishing.breaker import Admit, BreakerConfig, BreakerStore
from publishing.job import Job
from publishing.parking import Hold, ParkingLot
from publishing.priority import Priority
from publishing.testing import InMemoryBreakerStore, InMemoryParkingLot
from tests.contract.conftest import Backend

# Waits long enough apart that Redis's real clock cannot reorder them.
STEP_S = 0.15


# Trips on one failure, half-opens after OPEN_S, closes on one probe's success.
OPEN_S = 0.3
BREAKER = BreakerConfig(failure_threshold=1, open_timeout_s=OPEN_S, success_threshold=1)
# One held job of an open target goes back this often.
TRICKLE_S = 1.0
# Held far longer than any test runs: only the breaker lets these jobs go.
LONG = Hold("pd", 600.0)


@pytest.fixture
def breakers(backend: Backend) -> BreakerStore:
    if backend.is_redis:
        return RedisBreakerStore(backend.redis, "t")
    return InMemoryBreakerStore(backend.clock)


@pytest.fixture
def lot(backend: Backend, breakers: BreakerStore) -> ParkingLot:
    if backend.is_redis:
        return RedisParkingLot(backend.redis, "t", trickle_s=TRICKLE_S)
    assert isinstance(breakers, InMemoryBreakerStore)
    return InMemoryParkingLot(backend.clock, breakers, trickle_s=TRICKLE_S)


def trip(breakers: BreakerStore, target: str = "pd") -> None:
    breakers.record_failure(target, BREAKER, None)


def recover(breakers: BreakerStore, backend: Backend, target: str = "pd") -> None:
    """The open time passes, a probe is admitted and succeeds: the breaker is closed."""
    backend.advance(OPEN_S + 0.05)
    probe = breakers.acquire(target, BREAKER, 5.0)
    assert isinstance(probe, Admit) and probe.probe_id
    breakers.record_success(target, BREAKER, probe.probe_id)


def job(job_id: str, priority: Priority = Priority.MEDIUM, **changes: Any) -> Job:
    raw = {"status": "firing", "labels": {"alertname": "Down"}, "startsAt": "2024-05-01T10:00:00Z"}
    [alert] = parse_alertmanager({"alerts": [raw]})
    return Job(job_id, "pd", priority, alert, submitted_at=1_700_000_000.0).evolve(**changes)


def ids(claims: list[Any]) -> list[str]:
    return [c.job_id for c in claims]


def test_a_parked_job_is_claimed_once_due_with_its_message(lot: ParkingLot, backend: Backend) -> None:
    parked = job("a", deferrals=3, deferred_since=1_700_000_001.5)
    lot.park(parked, STEP_S)
    assert lot.claim(10) == []
    assert (lot.count(), lot.parked_ids()) == (1, {"a"})
    backend.advance(STEP_S + 0.05)
    (claim,) = lot.claim(10)
    assert Job.from_message(claim.message) == parked
    assert lot.claim(10) == []  # claimed: not claimed again while its lease runs
    assert lot.parked_ids() == {"a"}  # and still counted until confirmed
    lot.confirm([claim])
    assert (lot.count(), lot.parked_ids()) == (0, set())


def test_a_claim_takes_high_before_medium_before_low_each_in_due_order(
    lot: ParkingLot, backend: Backend
) -> None:
    lot.park(job("low-early", Priority.LOW), 0)
    lot.park(job("medium-late", Priority.MEDIUM), 2 * STEP_S)
    lot.park(job("medium-early", Priority.MEDIUM), STEP_S)
    lot.park(job("high", Priority.HIGH), 2 * STEP_S)
    lot.park(job("not-due", Priority.HIGH), 60)
    backend.advance(3 * STEP_S)
    first = lot.claim(2)
    assert ids(first) == ["high", "medium-early"]
    assert ids(lot.claim(10)) == ["medium-late", "low-early"]
    assert lot.count() == 5


def test_parking_a_job_again_replaces_its_entry(lot: ParkingLot, backend: Backend) -> None:
    lot.park(job("a", deferrals=1), 0)
    lot.park(job("a", deferrals=2), 2 * STEP_S)
    assert lot.count() == 1
    assert lot.claim(10) == []  # the later due time holds
    backend.advance(2 * STEP_S + 0.05)
    (claim,) = lot.claim(10)
    assert claim.message["deferrals"] == 2


def test_an_unconfirmed_claim_is_claimed_again_when_its_lease_ends(lot: ParkingLot, backend: Backend) -> None:
    lot.park(job("a"), 0)
    backend.advance(0.01)
    (first,) = lot.claim(10, lease_s=STEP_S)
    assert lot.claim(10, lease_s=STEP_S) == []
    backend.advance(STEP_S + 0.05)
    (again,) = lot.claim(10, lease_s=60)
    assert again.job_id == "a" and again.message == first.message and again.lease != first.lease
    lot.confirm([first])  # the first mover, late: the job is the second's now
    assert lot.parked_ids() == {"a"}
    lot.confirm([again])
    assert lot.count() == 0


def test_a_job_parked_again_while_its_claim_is_in_flight_keeps_its_new_entry(
    lot: ParkingLot, backend: Backend
) -> None:
    lot.park(job("a", deferrals=1), 0)
    backend.advance(0.01)
    (claim,) = lot.claim(10)
    # Moved, run, deferred and parked again before the mover confirmed.
    lot.park(job("a", deferrals=2), STEP_S)
    lot.confirm([claim])
    assert lot.parked_ids() == {"a"}
    backend.advance(STEP_S + 0.05)
    (again,) = lot.claim(10)
    assert again.message["deferrals"] == 2


def test_a_claim_is_bounded_by_its_limit(lot: ParkingLot, backend: Backend) -> None:
    for i in range(7):
        lot.park(job(f"j{i}"), 0)
    backend.advance(0.01)
    assert len(lot.claim(3)) == 3
    assert len(lot.claim(3)) == 3
    assert len(lot.claim(3)) == 1
    assert lot.count() == 7


def test_jobs_behind_an_open_breaker_are_held_one_a_claim_and_all_go_when_it_closes(
    lot: ParkingLot, breakers: BreakerStore, backend: Backend
) -> None:
    trip(breakers)
    held = [("h1", Priority.HIGH), ("m1", Priority.MEDIUM), ("m2", Priority.MEDIUM), ("l1", Priority.LOW)]
    for job_id, priority in [("h0", Priority.HIGH), *held]:
        lot.park(job(job_id, priority), 0, LONG)
    lot.park(job("plain"), 0)  # no hold: it goes when due, whatever the breaker
    lot.park(job("other", target="slack"), 0, Hold("slack", 600.0))  # its own breaker is closed
    backend.advance(0.01)
    first = lot.claim(10)
    # One job of the open target goes through (to probe, or to find it still open), the first due.
    assert sorted(ids(first)) == ["h0", "other", "plain"]
    lot.confirm(first)
    for _ in range(3):
        assert lot.claim(10) == []  # held: no claim sends them while the breaker stays open
        backend.advance(STEP_S)
    assert (lot.count(), lot.parked_ids()) == (4, {job_id for job_id, _ in held})
    recover(breakers, backend)
    # All at once, high before medium before low.
    released = lot.claim(10)
    assert ids(released)[0] == "h1" and ids(released)[-1] == "l1"
    assert sorted(ids(released)) == ["h1", "l1", "m1", "m2"]
    lot.confirm(released)
    assert lot.count() == 0


def test_a_claim_lets_one_held_job_of_each_blocked_target_through(
    lot: ParkingLot, breakers: BreakerStore, backend: Backend
) -> None:
    trip(breakers, "pd")
    trip(breakers, "slack")
    for i in range(3):
        lot.park(job(f"pd-{i}"), 0, LONG)
        lot.park(job(f"slack-{i}", target="slack"), 0, Hold("slack", 600.0))
    backend.advance(0.01)
    first = lot.claim(10)
    assert sorted(ids(first)) == ["pd-0", "slack-0"]
    lot.confirm(first)
    assert lot.claim(10) == []
    # Parked again (it found the breaker open): it is the one through once due.
    lot.park(job("pd-0"), STEP_S, LONG)
    backend.advance(STEP_S + 0.05)
    assert ids(lot.claim(10)) == ["pd-0"]
    assert lot.count() == 5


def test_a_held_job_goes_at_its_latest_time_while_the_breaker_stays_open(
    lot: ParkingLot, breakers: BreakerStore, backend: Backend
) -> None:
    trip(breakers)
    lot.park(job("probe", Priority.HIGH), 0, LONG)
    # Its fallback (or max deferral) deadline comes long before the breaker would close.
    lot.park(job("deadline"), 0, Hold("pd", 3 * STEP_S))
    lot.park(job("held"), 0, LONG)
    backend.advance(0.01)
    assert ids(lot.claim(10)) == ["probe"]
    assert lot.claim(10) == []
    backend.advance(STEP_S)
    assert lot.claim(10) == []
    backend.advance(2 * STEP_S + 0.05)
    assert ids(lot.claim(10)) == ["deadline"]
    assert lot.parked_ids() == {"probe", "deadline", "held"}  # two claimed, unconfirmed


def test_jobs_behind_a_pause_are_held_until_it_ends(
    lot: ParkingLot, breakers: BreakerStore, backend: Backend
) -> None:
    breakers.pause("pd", 2 * STEP_S)
    for i in range(3):
        lot.park(job(f"j{i}"), 0, LONG)
    backend.advance(0.01)
    assert len(lot.claim(10)) == 1
    assert lot.claim(10) == []
    backend.advance(2 * STEP_S + 0.05)
    assert sorted(ids(lot.claim(10))) == ["j1", "j2"]


def test_a_half_open_target_gets_one_held_job_a_claim_to_probe_it_closed(
    lot: ParkingLot, breakers: BreakerStore, backend: Backend
) -> None:
    trip(breakers)
    for i in range(4):
        lot.park(job(f"j{i}"), 0, LONG)
    backend.advance(0.01)
    first = lot.claim(10)
    assert ids(first) == ["j0"]
    backend.advance(OPEN_S + 0.05)
    probe = breakers.acquire("pd", BREAKER, 5.0)  # j0 runs at the half-open time: the probe
    assert isinstance(probe, Admit) and probe.probe_id
    # The breaker needs probes to close and only held jobs are left: one goes a claim.
    assert ids(lot.claim(10)) == ["j1"]
    assert ids(lot.claim(10)) == ["j2"]
    breakers.record_success("pd", BREAKER, probe.probe_id)
    assert ids(lot.claim(10)) == ["j3"]  # closed: the rest at once


def test_an_open_target_with_nothing_due_gets_one_held_job_now_and_then(
    lot: ParkingLot, breakers: BreakerStore, backend: Backend
) -> None:
    # The jobs that would probe it went elsewhere (rerouted, dead-lettered): it is still probed.
    trip(breakers)
    for i in range(3):
        lot.park(job(f"j{i}"), 0, LONG)
    backend.advance(0.01)
    assert ids(lot.claim(10)) == ["j0"]
    assert lot.claim(10) == []
    backend.advance(TRICKLE_S / 2)
    assert lot.claim(10) == []
    backend.advance(TRICKLE_S / 2 + 0.05)
    assert ids(lot.claim(10)) == ["j1"]
    assert lot.claim(10) == []
