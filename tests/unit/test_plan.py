"""The plan after an attempt: every retry timing, the hold cap, and when a job goes to the DLQ."""

from __future__ import annotations

from typing import Any

import pytest

from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerState, DeferReason
from publishing.classification import ErrorType
from publishing.delivery import Deferred, Delivered, Failed, Rerouted, RetryScheduled, Superseded
from publishing.dlq import ReplayResult
from publishing.job import Job
from publishing.plan import (
    Crashed,
    LetterUnwritable,
    LetterWritten,
    Redelivered,
    RedisUnavailable,
    Timings,
    plan,
)
from publishing.priority import Priority
from publishing.testing import FrozenClock
from publishing.tracking import JobState

TIMINGS = Timings(max_hold_s=150.0, redis_wait_s=2.0, crash_wait_s=2.0, max_crashes=3, max_starts=3)


def job(**changes: Any) -> Job:
    [alert] = parse_alertmanager(
        {
            "alerts": [
                {"status": "firing", "labels": {"alertname": "Down"}, "startsAt": "2024-05-01T10:00:00Z"}
            ]
        }
    )
    return Job("job-1", "pd", Priority.HIGH, alert, submitted_at=1_700_000_000.0).evolve(**changes)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_100.0)


def test_delivered_and_superseded_are_done(clock: FrozenClock) -> None:
    delivered = plan(job(), Delivered(200, 0.1), clock(), TIMINGS)
    assert (delivered.retry, delivered.letter, delivered.state) == (None, None, JobState.SUCCEEDED)
    assert delivered.tracking["completed_at"] == clock()
    superseded = plan(job(), Superseded(), clock(), TIMINGS)
    assert (superseded.retry, superseded.state) == (None, JobState.SUPERSEDED)


def test_a_transient_failure_spends_a_retry_after_the_domains_backoff(clock: FrozenClock) -> None:
    p = plan(job(retries=1), RetryScheduled(4.2, ErrorType.TRANSIENT, "HTTP 503"), clock(), TIMINGS)
    assert p.countdown_s == 4.2
    assert p.retry is not None and p.retry.retries == 2 and p.retry.last_retry_at == clock()
    assert p.tracking == {
        "state": JobState.RETRYING,
        "retry_count": 2,
        "error_type": ErrorType.TRANSIENT,
        "last_error": "HTTP 503",
    }


def test_a_deferral_spends_no_retry_and_remembers_when_it_began(clock: FrozenClock) -> None:
    first = plan(job(retries=2), Deferred(3.0, BreakerState.OPEN, DeferReason.BREAKER_OPEN), clock(), TIMINGS)
    assert first.retry is not None
    assert (first.retry.retries, first.retry.deferrals, first.retry.deferred_since) == (2, 1, clock())
    clock.advance(3)
    second = plan(first.retry, Deferred(3.0, BreakerState.OPEN), clock(), TIMINGS)
    assert second.retry is not None and second.retry.deferred_since == clock() - 3


@pytest.mark.parametrize(
    ("event", "wait"),
    [
        (Deferred(3600.0, BreakerState.OPEN), 150.0),
        (RetryScheduled(900.0, ErrorType.UNKNOWN, "x"), 150.0),
        (Deferred(-1.0, BreakerState.OPEN), 0.0),
    ],
)
def test_no_countdown_exceeds_the_hold_cap_or_goes_negative(
    event: Any, wait: float, clock: FrozenClock
) -> None:
    assert plan(job(), event, clock(), TIMINGS).countdown_s == wait


def test_a_reroute_starts_afresh_on_the_fallback(clock: FrozenClock) -> None:
    p = plan(job(retries=4, deferred_since=1.0), Rerouted("slack", "pd down for 60 s"), clock(), TIMINGS)
    assert p.retry is not None and (p.retry.via, p.retry.retries, p.retry.deferred_since) == (
        "slack",
        0,
        None,
    )
    assert p.countdown_s == 0 and p.tracking["delivered_via"] == "slack"


def test_a_final_failure_becomes_a_letter_that_says_when_it_failed(clock: FrozenClock) -> None:
    p = plan(job(retries=5), Failed(ErrorType.TRANSIENT, "HTTP 503"), clock(), TIMINGS)
    assert p.retry is None and p.state is JobState.FAILED
    assert p.letter is not None and p.letter.failure == {
        "error_type": "transient",
        "error": "HTTP 503",
        "failed_at": clock(),
        "writes": 0,
    }
    assert plan(p.letter, LetterWritten(), clock(), TIMINGS).state is JobState.DLQ


def test_an_unwritable_letter_waits_longer_each_time_and_keeps_its_failure(clock: FrozenClock) -> None:
    letter = plan(job(), Failed(ErrorType.PERMANENT, "HTTP 400"), clock(), TIMINGS).letter
    waits = []
    for _ in range(8):
        assert letter is not None
        p = plan(letter, LetterUnwritable("down"), clock(), TIMINGS)
        assert p.tracking == {} and p.retry is not None
        waits.append(p.countdown_s)
        letter = p.retry
    assert waits == [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0]
    assert letter is not None and letter.failure is not None and letter.failure["error"] == "HTTP 400"


def test_redis_unreachable_waits_with_the_same_job(clock: FrozenClock) -> None:
    original = job(retries=2, deferrals=1)
    p = plan(original, RedisUnavailable("ConnectionError"), clock(), TIMINGS)
    assert (p.retry, p.countdown_s, p.tracking) == (original, 2.0, {})


def test_crashes_wait_longer_each_time_then_dead_letter(clock: FrozenClock) -> None:
    current, waits = job(), []
    for _ in range(3):
        p = plan(current, Crashed("KeyError"), clock(), TIMINGS)
        assert p.retry is not None
        waits.append(p.countdown_s)
        current = p.retry
    assert waits == [2.0, 4.0, 6.0]
    final = plan(current, Crashed("KeyError"), clock(), TIMINGS)
    assert final.retry is None and final.letter is not None
    assert final.letter.failure is not None and final.letter.failure["error_type"] == "unknown"
    assert "4 times" in final.letter.failure["error"]


def test_a_crash_while_writing_a_letter_keeps_the_job(clock: FrozenClock) -> None:
    letter = plan(job(), Failed(ErrorType.PERMANENT, "HTTP 400"), clock(), TIMINGS).letter
    assert letter is not None
    for _ in range(6):
        p = plan(letter, Crashed("DataError"), clock(), TIMINGS)
        assert p.letter is None and p.retry is not None and p.retry.failure is not None
        letter = p.retry


def test_a_message_redelivered_too_often_is_dead_lettered(clock: FrozenClock) -> None:
    p = plan(job(), Redelivered(4), clock(), TIMINGS)
    assert p.letter is not None and p.letter.failure is not None
    assert (
        p.letter.failure["error_type"] == "permanent" and "redelivered 3 times" in p.letter.failure["error"]
    )


def test_the_settlement_keeps_the_next_message_and_forgets_it_once_the_job_is_done(
    clock: FrozenClock,
) -> None:
    retry = plan(job(), RetryScheduled(3.0, ErrorType.TRANSIENT, "HTTP 503"), clock(), TIMINGS)
    fields = retry.settlement()
    assert retry.retry is not None and fields["message"] == retry.retry.to_message()
    assert fields["wait_s"] == 3.0 and fields["state"] == JobState.RETRYING
    assert plan(job(), Delivered(200, 0.1), clock(), TIMINGS).settlement()["message"] is None
    # A failure keeps its message until its DLQ row is stored: the letter's plan clears it.
    failed = plan(job(), Failed(ErrorType.PERMANENT, "HTTP 400"), clock(), TIMINGS)
    assert "message" not in failed.settlement()
    assert failed.letter is not None
    assert plan(failed.letter, LetterWritten(), clock(), TIMINGS).settlement()["message"] is None


def test_a_replayed_job_records_its_end_on_the_row_it_came_from(clock: FrozenClock) -> None:
    assert plan(job(), Delivered(200, 0.1), clock(), TIMINGS).replay is None
    replayed = job(replayed_from="row-7")
    assert plan(replayed, Delivered(200, 0.1), clock(), TIMINGS).replay is ReplayResult.SUCCESS
    letter = plan(replayed, Failed(ErrorType.PERMANENT, "HTTP 400"), clock(), TIMINGS).letter
    assert letter is not None
    written = plan(letter, LetterWritten(), clock(), TIMINGS)
    assert written.replay is ReplayResult.FAILED
    assert written.reason == "dead-lettered (permanent): HTTP 400"
    # Only its end is recorded: a retry on the way is not.
    retry = plan(replayed, RetryScheduled(1.0, ErrorType.TRANSIENT, "HTTP 503"), clock(), TIMINGS)
    assert retry.replay is None
