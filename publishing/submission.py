"""Submission (docs/design.md (Where an alert goes); docs/design.md (Job states)): alerts become jobs. Fan-out to the enabled targets whose filter
matches, priority, de-duplication within the window, tracking, then enqueue through a port."""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.job import Job
from publishing.ordering import GateNote, OrderGate
from publishing.priority import Priority, priority_of
from publishing.targets import Target, TargetRegistry
from publishing.tracking import Claim, ClaimStatus, Deduplicator, JobSnapshot, JobState, JobTracker

# A request enqueues its jobs within milliseconds of claiming them; a claim still pending
# after this long belongs to a request that died.
CLAIM_GRACE_S = 5.0
CLAIM_POLL_S = 0.02
PRIORITY_ORDER = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}


class Enqueuer(Protocol):
    def enqueue(self, job: Job) -> None:
        """Hand the job to the broker; raise when it cannot be accepted."""
        ...

    def enqueue_many(self, jobs: Sequence[Job]) -> None:
        """Hand a request's jobs to the broker at once, in their order; raise when that may
        have failed (then any of them may or may not have been accepted)."""
        ...


@dataclass(frozen=True)
class SubmittedJob:
    id: str
    fingerprint: str
    target: str
    priority: Priority
    duplicate: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "target": self.target,
            "priority": self.priority.value,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class SubmissionResult:
    jobs: list[SubmittedJob] = field(default_factory=list)
    unrouted: list[str] = field(default_factory=list)

    @property
    def created(self) -> list[SubmittedJob]:
        return [j for j in self.jobs if not j.duplicate]

    @property
    def duplicates(self) -> list[SubmittedJob]:
        return [j for j in self.jobs if j.duplicate]

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in self.jobs], "unrouted": self.unrouted}


def dedup_key(enriched: EnrichedAlert, target: str) -> str:
    """Same fingerprint, status, target and start: the same notification (HA Alertmanagers
    both send it)."""
    alert = enriched.alert
    raw = "\x1f".join((alert.fingerprint, alert.status.value, target, format_time(alert.starts_at)))
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class Submitter:
    registry: TargetRegistry
    tracker: JobTracker
    deduplicator: Deduplicator
    enqueuer: Enqueuer
    _: KW_ONLY
    order_gate: OrderGate | None = None
    dedup_window_s: float
    clock: Callable[[], float]
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())
    sleep: Callable[[float], None] = time.sleep
    claim_grace_s: float = CLAIM_GRACE_S
    # Holds the order notes and tracking entries of a request and sends them together as the
    # block ends (on Redis: one round trip); by default each is sent when made.
    writes_together: Callable[[], AbstractContextManager[object]] = nullcontext

    def submit(
        self, alerts: Sequence[EnrichedAlert], target_names: Iterable[str] | None = None
    ) -> SubmissionResult:
        """Raises ``UnknownTargetError`` before anything is enqueued when a named target does
        not exist; an enqueue failure propagates with the jobs tracked and their claims
        pending, so a retried request gets the same ids and sends them again."""
        names = list(target_names) if target_names is not None else None
        if names is not None:
            for name in names:
                self.registry.get(name)
        result = SubmissionResult()
        pairs: list[tuple[EnrichedAlert, Target]] = []
        for enriched in alerts:
            targets = self.registry.matching(enriched, names)
            if not targets:
                result.unrouted.append(enriched.alert.fingerprint)
            pairs += [(enriched, target) for target in targets]
        # One round trip for every claim of the request, one for every tracking entry.
        keys = [dedup_key(enriched, target.name) for enriched, target in pairs]
        claims = self._claim([(key, self.new_id()) for key in keys])
        now = self.clock()
        fresh: list[tuple[Job, str]] = []
        for (enriched, target), key, claim in zip(pairs, keys, claims, strict=True):
            priority = priority_of(enriched)
            fingerprint = enriched.alert.fingerprint
            duplicate = claim.status is ClaimStatus.DUPLICATE
            result.jobs.append(SubmittedJob(claim.job_id, fingerprint, target.name, priority, duplicate))
            if not duplicate:
                fresh.append((Job(claim.job_id, target.name, priority, enriched, submitted_at=now), key))
        try:
            self._track([job for job, _ in fresh])
        except Exception:
            self._release_quietly([(key, job.job_id) for job, key in fresh])
            raise
        # High first: a page in a mixed request does not wait for its medium and low siblings.
        fresh.sort(key=lambda pair: PRIORITY_ORDER[pair[0].priority])
        # Every job of the request in one transaction. When it fails, which messages reached
        # the broker is not known (Redis may have applied it and lost only the reply), so
        # nothing is undone: each job stays tracked with its message and its claim pending. The
        # client's retry takes the claims over after the grace period and sends the jobs again
        # under the same ids, and the reconciler sends any job no retry asks for (docs/design.md
        # (Reconciler)): a duplicate under one id at worst, never a lost job.
        self.enqueuer.enqueue_many([job for job, _ in fresh])
        self._mark_quietly([(key, job.job_id) for job, key in fresh])
        return result

    def _claim(self, claims: list[tuple[str, str]]) -> list[Claim]:
        """The request's claims. A claim another request holds without having enqueued its job
        yet (an HA replica a few milliseconds ahead) is waited for, up to the grace period,
        after which it is taken over."""
        if self.dedup_window_s <= 0 or not claims:
            return [Claim(ClaimStatus.NEW, job_id) for _, job_id in claims]
        result = self.deduplicator.claim_many(claims, self.dedup_window_s, self.claim_grace_s)
        deadline = self.clock() + self.claim_grace_s + 1.0
        while True:
            waiting = [i for i, claim in enumerate(result) if claim.status is ClaimStatus.PENDING]
            if not waiting or self.clock() > deadline:
                break
            self.sleep(CLAIM_POLL_S)
            again = self.deduplicator.claim_many(
                [claims[i] for i in waiting], self.dedup_window_s, self.claim_grace_s
            )
            for i, claim in zip(waiting, again, strict=True):
                result[i] = claim
        # Still pending past the deadline (a clock jump): that job is its own request's.
        return [
            Claim(ClaimStatus.DUPLICATE, c.job_id) if c.status is ClaimStatus.PENDING else c for c in result
        ]

    def _abandon_quietly(self, claims: list[tuple[str, str]]) -> None:
        """Jobs that were tracked (with their message) but could not be enqueued: the
        client's retry submits them again, so the reconciler must not send them too. Their
        claims are released only once tracking says so; otherwise a retried request takes the
        claims over and gets the same ids (a duplicate under one id at worst)."""
        try:
            for _, job_id in claims:
                self.tracker.update(
                    job_id, state=JobState.FAILED, last_error="could not be enqueued", message=None
                )
        except Exception:
            return
        self._release_quietly([claim for claim in claims if claim[0]])

    def _release_quietly(self, claims: list[tuple[str, str]]) -> None:
        # Best effort: when Redis itself failed, the pending claims are taken over later.
        if claims and self.dedup_window_s > 0:
            with contextlib.suppress(Exception):
                self.deduplicator.release_many(claims)

    def _mark_quietly(self, claims: list[tuple[str, str]]) -> None:
        # Best effort: an unmarked claim is taken over after the grace period, and its job
        # enqueued again under the same id (a duplicate delivery at worst, never a lost one).
        if claims and self.dedup_window_s > 0:
            with contextlib.suppress(Exception):
                self.deduplicator.mark_enqueued(claims)

    def submit_job(
        self,
        enriched: EnrichedAlert,
        target: Target,
        *,
        replayed_from: str | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Enqueue one job without de-duplication (replays and test alerts)."""
        job = Job(
            job_id=job_id or self.new_id(),
            target=target.name,
            priority=priority_of(enriched),
            alert=enriched,
            submitted_at=self.clock(),
            replayed_from=replayed_from,
        )
        self._track([job])
        try:
            self.enqueuer.enqueue(job)
        except Exception:
            self._abandon_quietly([("", job.job_id)])
            raise
        return job

    def _track(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        with self.writes_together():
            self._note_and_record(jobs)

    def _note_and_record(self, jobs: Sequence[Job]) -> None:
        if self.order_gate is not None:
            # On the gate's clock, before the job can run: a firing is superseded by a resolve
            # noted after it, whatever the clocks of the API hosts that took them.
            self.order_gate.note(
                [
                    GateNote(
                        job.target,
                        job.alert.alert.fingerprint,
                        job.job_id,
                        job.alert.alert.status is AlertStatus.FIRING,
                    )
                    for job in jobs
                ]
            )
        self.tracker.record_many(
            [
                JobSnapshot(
                    id=job.job_id,
                    fingerprint=job.alert.alert.fingerprint,
                    alert_name=job.alert.alert.alert_name,
                    target=job.target,
                    priority=job.priority,
                    state=JobState.QUEUED,
                    submitted_at=job.submitted_at,
                )
                for job in jobs
            ],
            # Kept with the entry so the reconciler can send exactly it again.
            {job.job_id: job.to_message() for job in jobs},
        )
