"""The reconciler's decisions (docs/design.md (Reconciler)): which tracked jobs whose message
the broker lost are to be sent again, and which replay claims whose job never reached the
broker are to be released. Pure: the scanning is ``publishing.adapters.redis.reconcile``'s.

Kombu takes a message off its queue (BRPOP) before it records it as unacknowledged; a Redis
that dies in between, or a failover to a replica that had not yet received either, loses it.
Tracking keeps each job's next message, so such a job can be sent again, under its own id.
A job parked in Redis until it is due (``publishing.parking``) is on the broker as much as one
in a queue: its mover sends it, the reconciler must not.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from publishing.tracking import JobState

# The states in which a job's message must be in a queue or held by a worker: a job being
# processed is on a worker (kombu restores it if the worker dies), a finished one has none.
WAITING_STATES = (JobState.QUEUED, JobState.RETRYING, JobState.DEFERRED)


@dataclass(frozen=True)
class Candidate:
    """A tracked job as the reconciler sees it; times on the store's clock."""

    job_id: str
    state: JobState
    updated_at: float
    # The countdown its last message was sent with: it may be held that long before it runs.
    wait_s: float = 0.0
    has_message: bool = True


@dataclass(frozen=True)
class ReplayClaim:
    """A DLQ row claimed for replay whose job has not reported a result."""

    letter_id: str
    job_id: str
    claimed_at: float


def to_resend(
    candidates: Iterable[Candidate],
    present: Collection[str],
    now: float,
    grace_s: float,
    parked: Collection[str] = (),
) -> list[str]:
    """The jobs to send again: waiting for a message that is in no queue, held by no worker
    (``present`` holds the ids that are) and not parked (``parked``), untouched for the grace
    period beyond their countdown, and with a message to send."""
    return [
        c.job_id
        for c in candidates
        if c.state in WAITING_STATES
        and c.has_message
        and c.job_id not in present
        and c.job_id not in parked
        and now - c.updated_at >= grace_s + max(c.wait_s, 0.0)
    ]


def claims_to_release(
    claims: Iterable[ReplayClaim],
    tracked: Collection[str],
    present: Collection[str],
    now: float,
    grace_s: float,
    parked: Collection[str] = (),
) -> list[ReplayClaim]:
    """Claims older than the grace period whose job is neither tracked nor on the broker (in
    a queue, held by a worker or parked): the request that claimed the row died before it
    enqueued the job (a tracked job is the reconciler's to send again, not a claim to drop)."""
    return [
        c
        for c in claims
        if c.job_id not in tracked
        and c.job_id not in present
        and c.job_id not in parked
        and now - c.claimed_at >= grace_s
    ]
