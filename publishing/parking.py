"""Jobs parked outside the workers (docs/design.md (Retries)): a job whose next attempt is
more than a moment away waits in a store, scored by when it is due, instead of as a countdown
message a worker holds in memory; a mover sends due jobs back to their queue.

The store (``ParkingLot``) is at least once: a claim moves due jobs to an in-flight state
under a lease, the mover enqueues them and then confirms; a claim whose mover died before it
confirmed is claimed again when its lease ends. A job moved twice runs twice under the same
id, and carries the same ``Idempotency-Key``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from publishing.job import Job

log = logging.getLogger(__name__)

# A mover's claim, at most: one round trip to claim, one send a job, one to confirm.
MOVE_BATCH = 500
# How long a claim stays the claiming mover's: far longer than enqueueing a batch takes, short
# enough that the jobs of a mover that died are late by no more than this.
LEASE_S = 30.0


@dataclass(frozen=True)
class Claim:
    """A due job taken from the lot to be sent again; ``lease`` names this claim (a job parked
    and claimed again meanwhile carries another)."""

    job_id: str
    message: Mapping[str, Any]
    lease: int


class ParkingLot(Protocol):
    def park(self, job: Job, wait_s: float) -> None:
        """Keep ``job``'s message until ``wait_s`` from now (on the store's clock); a job
        parked again replaces its earlier entry."""

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[Claim]:
        """Up to ``limit`` jobs to send: first claims whose lease ended unconfirmed, then due
        jobs, ``high`` before ``medium`` before ``low``, each in the order they fell due."""

    def confirm(self, claims: Sequence[Claim]) -> None:
        """The claims' jobs are on their queues: forget them (a claim taken over by a later
        one, after its lease ended, is left to that one)."""

    def parked_ids(self) -> set[str]:
        """Every job parked or claimed and not yet confirmed."""

    def count(self) -> int:
        """How many jobs are parked or claimed."""


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
