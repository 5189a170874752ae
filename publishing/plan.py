"""What happens after an attempt, decided here and nowhere else: the job to send again and
when, what tracking records, and whether the job goes to the DLQ. The worker carries a
``Plan`` out; every wait a job can take is in ``Timings`` (docs/design.md (Retries)).

Besides the attempt's own outcome (``publishing.delivery``) a run can end in four ways of
the worker's making: Redis unreachable, a crash of ours, a message redelivered too often,
and a DLQ row that cannot be written yet. Each is an event with a plan too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from publishing.breaker import DeferReason
from publishing.classification import ErrorType
from publishing.delivery import (
    Deferred,
    Delivered,
    Failed,
    Grouped,
    GroupWait,
    Outcome,
    Redelivered,
    Rerouted,
    RetryScheduled,
    Superseded,
)
from publishing.dlq import ReplayResult
from publishing.job import Job
from publishing.tracking import JobState


@dataclass(frozen=True)
class Timings:
    # The longest countdown a worker holds as an ETA message (half the visibility timeout):
    # a longer wait (an open breaker, a pause) comes back early and defers again.
    max_hold_s: float = 150.0
    # A wait longer than this is parked in Redis instead of held by a worker, so what a worker
    # holds is bounded by its rate times this, not by a backlog (docs/design.md (Retries)).
    park_after_s: float = 2.0
    # Redis (tracking, breaker) unreachable: ask again this soon, spending nothing.
    redis_wait_s: float = 2.0
    # A crash of ours on a job waits crash_wait_s times the crashes so far, at most
    # max_crashes times, then the job is dead-lettered.
    crash_wait_s: float = 2.0
    max_crashes: int = 3
    # A message started this many times for the same attempt kills its worker: DLQ.
    max_starts: int = 3
    # The DLQ database unreachable: write the row again after these waits, the last repeating.
    letter_waits_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)


@dataclass(frozen=True)
class RedisUnavailable:
    """Tracking or the breaker could not be reached (a failover, a blip)."""

    error: str


@dataclass(frozen=True)
class Crashed:
    """The worker failed on this job: a bug of ours or a library's, not the target."""

    error: str


@dataclass(frozen=True)
class LetterUnwritable:
    """The DLQ row could not be written: the database is unreachable."""

    error: str


@dataclass(frozen=True)
class LetterWritten:
    """The DLQ row is stored (or was already)."""


Event = Outcome | RedisUnavailable | Crashed | LetterUnwritable | LetterWritten


@dataclass(frozen=True)
class Plan:
    """``tracking`` holds the fields to record (``state`` among them, absent when nothing
    changes); ``retry`` the job to send again after ``countdown_s``, ``parked`` (waiting in
    Redis) or as a countdown message; ``letter`` a job that failed for good, whose DLQ row is
    to be written now."""

    kind: str
    tracking: Mapping[str, Any] = field(default_factory=dict)
    retry: Job | None = None
    countdown_s: float = 0.0
    letter: Job | None = None
    parked: bool = False
    # A replayed job's end, to record on the DLQ row it was replayed from.
    replay: ReplayResult | None = None
    # Why the job was dead-lettered: what the task reports as its failure.
    reason: str = ""
    # The target whose breaker (open, probing) or pause deferred the job: a parked job may wait
    # behind it until it admits again, not wake every open period (docs/design.md (Retries)).
    hold_target: str | None = None

    @property
    def state(self) -> JobState | None:
        state = self.tracking.get("state")
        return JobState(state) if state is not None else None

    def settlement(self) -> dict[str, Any]:
        """The tracking fields to write. The next message is kept with the job's entry, so the
        reconciler can send exactly it again if the broker loses it; a job that is done keeps
        none (docs/design.md (Reconciler))."""
        fields: dict[str, Any] = dict(self.tracking)
        if self.retry is not None:
            fields.update(message=self.retry.to_message(), wait_s=self.countdown_s)
        elif self.letter is None:
            fields["message"] = None
        return fields


def plan(job: Job, event: Event, now: float, timings: Timings) -> Plan:
    if isinstance(event, Delivered):
        replay = ReplayResult.SUCCESS if job.replayed_from else None
        return Plan("delivered", {"state": JobState.SUCCEEDED, "completed_at": now}, replay=replay)
    if isinstance(event, Superseded):
        return Plan("superseded", {"state": JobState.SUPERSEDED, "completed_at": now})
    if isinstance(event, Rerouted):
        rerouted = job.evolve(via=event.via, retries=0, deferred_since=None)
        via = {"state": JobState.RETRYING, "delivered_via": event.via, "last_error": event.reason}
        return Plan("rerouted", via, retry=rerouted)
    if isinstance(event, Grouped):
        # Done as far as its own message goes: it stays ``processing`` until the carrier, which
        # may finish first, settles it; a group already delivered settled it, but this run
        # marked it ``processing`` again (docs/design.md (Storm grouping)).
        settled = {"state": JobState.SUCCEEDED, "completed_at": now} if event.settled else {}
        return Plan("grouped", {**settled, "carried_by": event.carrier})
    if isinstance(event, GroupWait):
        waiting = job.evolve(deferrals=job.deferrals + 1, deferred_since=job.deferred_since or now)
        return _retry("group_wait", {"state": JobState.DEFERRED}, waiting, event.delay_s, timings)
    if isinstance(event, Deferred):
        deferred = job.evolve(deferrals=job.deferrals + 1, deferred_since=job.deferred_since or now)
        p = _retry("deferred", {"state": JobState.DEFERRED}, deferred, event.delay_s, timings)
        if p.parked and event.reason in _HOLDABLE:
            return replace(p, hold_target=job.via or job.target)
        return p
    if isinstance(event, RetryScheduled):
        fields: dict[str, Any] = {
            "state": JobState.RETRYING,
            "retry_count": job.retries + 1,
            "error_type": event.error_type,
            "last_error": event.error,
        }
        retried = job.evolve(retries=job.retries + 1, last_retry_at=now, deferred_since=None)
        return _retry("retry", fields, retried, event.delay_s, timings)
    if isinstance(event, Failed):
        return _failed(job, event.error_type, event.error, now)
    if isinstance(event, Redelivered):
        error = f"the job was redelivered {event.starts - 1} times without finishing"
        return _failed(job, ErrorType.PERMANENT, error, now)
    if isinstance(event, RedisUnavailable):
        return _retry("redis_wait", {}, job, timings.redis_wait_s, timings)
    if isinstance(event, Crashed):
        return _crashed(job, event, now, timings)
    if isinstance(event, LetterUnwritable):
        assert job.failure is not None
        writes = int(job.failure.get("writes") or 0)
        wait = timings.letter_waits_s[min(writes, len(timings.letter_waits_s) - 1)]
        pending = job.evolve(failure={**job.failure, "writes": writes + 1})
        return _retry("letter_wait", {}, pending, wait, timings)
    failure = job.failure or {}
    reason = f"dead-lettered ({failure.get('error_type', 'unknown')}): {failure.get('error', '')}"
    replay = ReplayResult.FAILED if job.replayed_from else None
    return Plan("dead_lettered", {"state": JobState.DLQ}, replay=replay, reason=reason)


# Deferrals that end when the target's breaker closes or its pause ends, not at a set time.
_HOLDABLE = frozenset({DeferReason.BREAKER_OPEN, DeferReason.PROBE_BUSY, DeferReason.PAUSED})


def _retry(kind: str, fields: Mapping[str, Any], job: Job, wait_s: float, timings: Timings) -> Plan:
    countdown_s = max(0.0, min(wait_s, timings.max_hold_s))
    # Redis unreachable is what a "redis_wait" waits out: it cannot park there. A DLQ row waiting
    # for the database keeps its message unacknowledged until the row is stored (at most 30 s).
    parked = countdown_s > timings.park_after_s and kind not in ("redis_wait", "letter_wait")
    return Plan(kind, fields, retry=job, countdown_s=countdown_s, parked=parked)


def _failed(job: Job, error_type: ErrorType, error: str, now: float) -> Plan:
    fields: dict[str, Any] = {
        "state": JobState.FAILED,
        "retry_count": job.retries,
        "error_type": error_type,
        "last_error": error,
        "completed_at": now,
    }
    failure: dict[str, Any] = {"error_type": error_type.value, "error": error, "failed_at": now, "writes": 0}
    return Plan("failed", fields, letter=job.evolve(failure=failure))


def _crashed(job: Job, event: Crashed, now: float, timings: Timings) -> Plan:
    crashed = job.evolve(crashes=job.crashes + 1)
    if job.failure is not None:
        # Writing the row itself fails, and not because the database is down: keep the job.
        return _retry("letter_wait", {}, crashed, timings.letter_waits_s[-1], timings)
    if crashed.crashes <= timings.max_crashes:
        return _retry("crash_retry", {}, crashed, timings.crash_wait_s * crashed.crashes, timings)
    error = f"the worker failed on this job {crashed.crashes} times ({event.error})"
    return _failed(crashed, ErrorType.UNKNOWN, error, now)
