"""Jobs parked outside the workers (docs/design.md (Retries)): a job whose next attempt is
more than a moment away waits in a store, scored by when it is due, instead of as a countdown
message a worker holds in memory; a mover sends due jobs back to their queue.

The store (``ParkingLot``) is at least once: a claim moves due jobs to an in-flight state
under a lease, the mover enqueues them and then confirms; a claim whose mover died before it
confirmed is claimed again when its lease ends. A job moved twice runs twice under the same
id, and carries the same ``Idempotency-Key``.

A job deferred by its target's breaker or pause is parked with a ``Hold``: once due, it waits
on in the store while that target admits nothing (one such job a claim goes through, to probe
or to find it still open), and all go at once when the target admits again, so a backlog
behind an open breaker costs no task run an open period. It goes regardless at the hold's
``latest``: its fallback deadline or its ``max_deferral_s`` deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from publishing.errors import UnknownTargetError
from publishing.job import Job
from publishing.targets import TargetRegistry

log = logging.getLogger(__name__)

# A mover's claim, at most: one round trip to claim, one send a job, one to confirm.
MOVE_BATCH = 500
# How long a claim stays the claiming mover's: far longer than enqueueing a batch takes, short
# enough that the jobs of a mover that died are late by no more than this.
LEASE_S = 30.0
# While a target stays open or paused, one of its held jobs goes back this often, fleet-wide:
# its breaker is probed even when every job that would have probed it left another way
# (rerouted, dead-lettered). While it is half-open, one goes back every claim.
TRICKLE_S = 5.0


@dataclass(frozen=True)
class Hold:
    """Once due, wait on while ``target``'s breaker is not closed or it is paused, but no
    longer than ``latest_s`` from the park."""

    target: str
    latest_s: float


def hold_for(
    job: Job, target: str, wait_s: float, now: float, max_deferral_s: float, registry: TargetRegistry
) -> Hold | None:
    """The hold of a job deferred by ``target`` for ``wait_s``; None when it must run at its due
    time anyway. It runs no later than its ``max_deferral_s`` deadline (it dead-letters then),
    nor, when it may take a fallback, than its due time: delivery has already brought that
    forward to the fallback deadline, and which of the two it is does not matter."""
    latest_s = (job.deferred_since if job.deferred_since is not None else now) + max_deferral_s - now
    if _may_fall_back(job, registry):
        latest_s = min(latest_s, wait_s)
    return Hold(target, latest_s) if latest_s > wait_s else None


def _may_fall_back(job: Job, registry: TargetRegistry) -> bool:
    if job.via is not None:
        return False
    try:
        primary = registry.get(job.target)
    except UnknownTargetError:
        return False
    return bool(primary.fallback) and job.priority.value in primary.fallback_priorities


@dataclass(frozen=True)
class Claim:
    """A due job taken from the lot to be sent again; ``lease`` names this claim (a job parked
    and claimed again meanwhile carries another)."""

    job_id: str
    message: Mapping[str, Any]
    lease: int


class ParkingLot(Protocol):
    def park(self, job: Job, wait_s: float, hold: Hold | None = None) -> None:
        """Keep ``job``'s message until ``wait_s`` from now (on the store's clock), and then,
        with a ``hold``, while its target admits nothing, up to ``hold.latest_s`` from now; a job
        parked again replaces its earlier entry."""

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[Claim]:
        """Up to ``limit`` jobs to send: first claims whose lease ended unconfirmed, then due
        jobs, ``high`` before ``medium`` before ``low``, each in the order they fell due. A due
        job with a hold whose target admits nothing is held instead, all but one a target a
        call; held jobs become due again when their target admits, or at their latest."""

    def confirm(self, claims: Sequence[Claim]) -> None:
        """The claims' jobs are on their queues: forget them (a claim taken over by a later
        one, after its lease ended, is left to that one)."""

    def parked_ids(self) -> set[str]:
        """Every job parked (held or not) or claimed and not yet confirmed."""

    def count(self) -> int:
        """How many jobs are parked (held or not) or claimed."""


class Sender(Protocol):
    def enqueue_many(self, jobs: Sequence[Job]) -> None:
        """Put each job on the queue of its priority, by task name, under its id, in one go;
        an error means any of them may have been sent."""


@dataclass
class Moved:
    sent: int = 0
    unreadable: int = 0


def move_due(lot: ParkingLot, sender: Sender, *, batch: int = MOVE_BATCH, lease_s: float = LEASE_S) -> Moved:
    """One claim's jobs sent back to their queues (by their priority), by task name, under
    their ids, in one batch, then confirmed. A batch whose send fails is not confirmed: it is
    claimed again once its lease ends, and a job that did reach its queue runs twice under its
    id."""
    moved = Moved()
    claims = lot.claim(batch, lease_s)
    jobs: list[Job] = []
    readable: list[Claim] = []
    unreadable: list[Claim] = []
    for claim in claims:
        try:
            jobs.append(Job.from_message(claim.message))
            readable.append(claim)
        except Exception as exc:
            # Only a bug parks what ``Job.to_message`` did not write: dropping it is the one way
            # it stops coming back every lease.
            log.error("parked job %s: its message cannot be read (%s); dropped", claim.job_id,
                      type(exc).__name__)  # fmt: skip
            unreadable.append(claim)
    moved.unreadable = len(unreadable)
    if unreadable:
        lot.confirm(unreadable)
    if jobs:
        sender.enqueue_many(jobs)
        moved.sent = len(jobs)
        lot.confirm(readable)
    return moved
