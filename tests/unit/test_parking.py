"""Parked jobs (docs/design.md (Retries)): which waits the plan parks, and how the mover sends
due parked jobs back, on the in-memory lot and a frozen clock."""

from __future__ import annotations

from typing import Any

import pytest

from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerState, DeferReason
from publishing.classification import ErrorType
from publishing.delivery import Deferred, RetryScheduled
from publishing.job import Job
from publishing.parking import Hold, hold_for, move_due
from publishing.plan import Crashed, Event, LetterUnwritable, RedisUnavailable, Timings, plan
from publishing.priority import Priority
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryParkingLot, RecordingEnqueuer
from publishing.tracking import JobState

TIMINGS = Timings(max_hold_s=150.0, park_after_s=2.0)


def job(job_id: str = "job-1", priority: Priority = Priority.HIGH, **changes: Any) -> Job:
    raw = {"status": "firing", "labels": {"alertname": "Down"}, "startsAt": "2024-05-01T10:00:00Z"}
    [alert] = parse_alertmanager({"alerts": [raw]})
    return Job(job_id, "pd", priority, alert, submitted_at=1_700_000_000.0).evolve(**changes)


def deferred(wait_s: float, reason: DeferReason = DeferReason.BREAKER_OPEN) -> Deferred:
    return Deferred(wait_s, BreakerState.OPEN, reason)


@pytest.mark.parametrize(
    ("event", "parked", "countdown_s"),
    [
        pytest.param(deferred(29.5), True, 29.5, id="breaker-open"),
        pytest.param(deferred(600, DeferReason.PAUSED), True, 150.0, id="long-pause-capped"),
        pytest.param(deferred(1.4, DeferReason.PROBE_BUSY), False, 1.4, id="probe-slot-busy"),
        pytest.param(deferred(2.0, DeferReason.RATE_LIMITED), False, 2.0, id="at-the-threshold"),
        pytest.param(RetryScheduled(8.0, ErrorType.TRANSIENT, "HTTP 503"), True, 8.0, id="long-backoff"),
        pytest.param(RetryScheduled(0.4, ErrorType.TRANSIENT, "HTTP 503"), False, 0.4, id="short-backoff"),
        pytest.param(Crashed("KeyError: x"), False, 2.0, id="first-crash"),
        pytest.param(RedisUnavailable("ConnectionError"), False, 2.0, id="redis-away"),
    ],
)  # fmt: skip
def test_a_wait_longer_than_the_threshold_is_parked(event: Event, parked: bool, countdown_s: float) -> None:
    p = plan(job(), event, 1_700_000_100.0, TIMINGS)
    assert p.retry is not None
    assert (p.parked, p.countdown_s) == (parked, countdown_s)


def test_redis_away_is_never_parked_however_long_the_wait() -> None:
    timings = Timings(redis_wait_s=10.0, park_after_s=2.0)
    p = plan(job(), RedisUnavailable("ConnectionError"), 0.0, timings)
    assert (p.parked, p.countdown_s) == (False, 10.0)


def test_a_dlq_row_waiting_for_the_database_keeps_its_message_however_long_the_wait() -> None:
    failing = job(failure={"error_type": "permanent", "error": "HTTP 400", "writes": 3})
    p = plan(failing, LetterUnwritable("database down"), 0.0, TIMINGS)
    assert (p.kind, p.parked, p.countdown_s) == ("letter_wait", False, 10.0)


def test_a_crash_waiting_long_is_parked() -> None:
    p = plan(job(crashes=1), Crashed("KeyError: x"), 0.0, TIMINGS)
    assert (p.kind, p.parked, p.countdown_s) == ("crash_retry", True, 4.0)


@pytest.mark.parametrize(
    ("event", "hold_target"),
    [
        pytest.param(deferred(29.5), "pd", id="breaker-open"),
        pytest.param(deferred(600, DeferReason.PAUSED), "pd", id="paused"),
        pytest.param(deferred(5.0, DeferReason.ORDERING), None, id="ordering"),
        pytest.param(deferred(5.0, DeferReason.RATE_LIMITED), None, id="rate-limited"),
        pytest.param(RetryScheduled(8.0, ErrorType.TRANSIENT, "HTTP 503"), None, id="backoff"),
    ],
)  # fmt: skip
def test_a_job_parked_behind_its_targets_breaker_or_pause_names_that_target(
    event: Event, hold_target: str | None
) -> None:
    p = plan(job(), event, 1_700_000_100.0, TIMINGS)
    assert p.parked and p.hold_target == hold_target


def test_a_job_on_its_fallback_is_held_behind_the_fallbacks_breaker() -> None:
    p = plan(job(via="backup"), deferred(29.5), 1_700_000_100.0, TIMINGS)
    assert p.hold_target == "backup"


def registry() -> TargetRegistry:
    return TargetRegistry(
        [
            parse_target(
                {"name": "pd", "type": "webhook", "url": "http://p.example/", "fallback": ["backup"]}
            ),
            parse_target({"name": "backup", "type": "webhook", "url": "http://b.example/"}),
        ]
    )


def test_a_held_job_runs_no_later_than_its_max_deferral_deadline() -> None:
    waiting = job(priority=Priority.LOW, deferred_since=1_000.0)
    assert hold_for(waiting, "pd", 29.5, 1_100.0, 3600.0, registry()) == Hold("pd", 3500.0)
    # Its deadline comes before it is due anyway: nothing to hold.
    assert hold_for(waiting, "pd", 29.5, 4_580.0, 3600.0, registry()) is None


def test_a_job_that_may_fall_back_is_not_held_past_its_due_time() -> None:
    # Delivery brought its due time forward to its fallback deadline: it must run then.
    assert (
        hold_for(job(priority=Priority.HIGH, deferred_since=1_000.0), "pd", 20.0, 1_010.0, 3600.0, registry())
        is None
    )
    on_fallback = job(priority=Priority.HIGH, deferred_since=1_000.0, via="backup")
    assert hold_for(on_fallback, "backup", 20.0, 1_010.0, 3600.0, registry()) == Hold("backup", 3590.0)


def test_a_parked_deferral_keeps_the_deferred_state_and_counts_the_deferral() -> None:
    p = plan(job(), deferred(30.0), 1_700_000_100.0, TIMINGS)
    assert p.parked and p.state is JobState.DEFERRED
    assert p.retry is not None and p.retry.deferrals == 1 and p.retry.deferred_since == 1_700_000_100.0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def lot(clock: FrozenClock) -> InMemoryParkingLot:
    return InMemoryParkingLot(clock)


def test_nothing_moves_before_it_is_due(lot: InMemoryParkingLot, clock: FrozenClock) -> None:
    sender = RecordingEnqueuer()
    lot.park(job("a"), 30.0)
    clock.advance(29.9)
    assert move_due(lot, sender).sent == 0 and sender.sent == []
    clock.advance(0.1)
    assert move_due(lot, sender).sent == 1
    assert [j.job_id for j in sender.sent] == ["a"]
    assert lot.count() == 0


def test_due_jobs_move_high_first_then_each_queue_in_due_order(
    lot: InMemoryParkingLot, clock: FrozenClock
) -> None:
    lot.park(job("low-1", Priority.LOW), 1.0)
    lot.park(job("medium-2", Priority.MEDIUM), 5.0)
    lot.park(job("medium-1", Priority.MEDIUM), 3.0)
    lot.park(job("high-1", Priority.HIGH), 9.0)
    lot.park(job("later", Priority.HIGH), 60.0)
    clock.advance(10.0)
    sender = RecordingEnqueuer()
    assert move_due(lot, sender, batch=3).sent == 3
    assert [j.job_id for j in sender.sent] == ["high-1", "medium-1", "medium-2"]
    move_due(lot, sender, batch=3)
    assert [j.job_id for j in sender.sent][3:] == ["low-1"]
    assert lot.parked_ids() == {"later"}


def test_a_moved_job_is_the_parked_job_under_its_own_id(lot: InMemoryParkingLot, clock: FrozenClock) -> None:
    parked = job("a", deferrals=4, deferred_since=1_700_000_000.0)
    lot.park(parked, 2.5)
    clock.advance(3.0)
    sender = RecordingEnqueuer()
    move_due(lot, sender)
    assert sender.sent == [parked]


def test_a_job_parked_again_is_parked_once_with_its_new_due_time(
    lot: InMemoryParkingLot, clock: FrozenClock
) -> None:
    lot.park(job("a", deferrals=1), 5.0)
    lot.park(job("a", deferrals=2), 20.0)
    assert lot.count() == 1
    clock.advance(10.0)
    assert lot.claim(10) == []
    clock.advance(10.0)
    (claim,) = lot.claim(10)
    assert claim.message["deferrals"] == 2


class FailingAfter(RecordingEnqueuer):
    """A broker that accepts ``accepted`` jobs of a batch and then fails (its reply lost)."""

    def __init__(self, accepted: int) -> None:
        super().__init__()
        self.accepted = accepted

    def enqueue(self, job: Any) -> None:
        if len(self.sent) >= self.accepted:
            raise ConnectionError("broker away")
        super().enqueue(job)


def test_a_batch_whose_send_fails_is_claimed_again_when_its_lease_ends(
    lot: InMemoryParkingLot, clock: FrozenClock
) -> None:
    for i in range(3):
        lot.park(job(f"j{i}"), 1.0 + i)
    clock.advance(5.0)
    failing = FailingAfter(1)
    with pytest.raises(ConnectionError):
        move_due(lot, failing, lease_s=30.0)
    assert lot.parked_ids() == {"j0", "j1", "j2"}  # in flight, not lost
    sender = RecordingEnqueuer()
    clock.advance(29.0)
    assert move_due(lot, sender, lease_s=30.0).sent == 0
    clock.advance(1.0)
    assert move_due(lot, sender, lease_s=30.0).sent == 3
    # j0 may have reached its queue the first time: it is sent again under the same id.
    assert [j.job_id for j in failing.sent] == ["j0"]
    assert sorted(j.job_id for j in sender.sent) == ["j0", "j1", "j2"]
    assert lot.count() == 0


def test_a_claim_taken_over_after_its_lease_is_confirmed_by_its_new_mover_only(
    lot: InMemoryParkingLot, clock: FrozenClock
) -> None:
    lot.park(job("a"), 1.0)
    clock.advance(1.0)
    (slow,) = lot.claim(10, lease_s=30.0)
    clock.advance(30.0)
    (again,) = lot.claim(10, lease_s=30.0)
    assert again.job_id == "a" and again.lease != slow.lease
    lot.confirm([slow])
    assert lot.parked_ids() == {"a"}
    lot.confirm([again])
    assert lot.parked_ids() == set()


def test_an_unreadable_parked_message_is_dropped_not_moved_forever(
    lot: InMemoryParkingLot, clock: FrozenClock
) -> None:
    lot.park(job("good"), 1.0)
    # A claim whose lease has ended, of a message no job can be read from.
    lot.moving["bad"] = (int(clock() * 1000), {"job_id": "bad"})
    clock.advance(1.0)
    sender = RecordingEnqueuer()
    moved = move_due(lot, sender, lease_s=30.0)
    assert (moved.sent, moved.unreadable) == (1, 1)
    assert [j.job_id for j in sender.sent] == ["good"] and lot.count() == 0
