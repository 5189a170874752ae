"""Parked jobs (``publishing.parking.ParkingLot``): the in-memory lot and the Redis scripts park,
claim and confirm alike, on their own clock (the fake's, or Redis's ``TIME``)."""

from __future__ import annotations

from typing import Any

import pytest

from publishing.adapters.redis.parking import RedisParkingLot
from publishing.alert import parse_alertmanager
from publishing.job import Job
from publishing.parking import ParkingLot
from publishing.priority import Priority
from publishing.testing import InMemoryParkingLot
from tests.contract.conftest import Backend

# Waits long enough apart that Redis's real clock cannot reorder them.
STEP_S = 0.15


@pytest.fixture
def lot(backend: Backend) -> ParkingLot:
    if backend.is_redis:
        return RedisParkingLot(backend.redis, "t")
    return InMemoryParkingLot(backend.clock)


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
