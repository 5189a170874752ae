"""Submission (SPEC §1, §8): alerts become jobs. Fan-out to the enabled targets whose filter
matches, priority, de-duplication within the window, tracking, then enqueue through a port."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.job import Job
from publishing.ordering import OrderGate
from publishing.priority import Priority, priority_of
from publishing.targets import Target, TargetRegistry
from publishing.tracking import Deduplicator, JobSnapshot, JobState, JobTracker


class Enqueuer(Protocol):
    def enqueue(self, job: Job) -> None:
        """Hand the job to the broker; raise when it cannot be accepted."""
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


class Submitter:
    def __init__(
        self,
        registry: TargetRegistry,
        tracker: JobTracker,
        deduplicator: Deduplicator,
        enqueuer: Enqueuer,
        *,
        order_gate: OrderGate | None = None,
        dedup_window_s: float,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._registry = registry
        self._tracker = tracker
        self._dedup = deduplicator
        self._enqueuer = enqueuer
        self._gate = order_gate
        self._window_s = dedup_window_s
        self._clock = clock
        self._new_id = new_id

    def submit(
        self, alerts: Sequence[EnrichedAlert], target_names: Iterable[str] | None = None
    ) -> SubmissionResult:
        """Raises ``UnknownTargetError`` before anything is enqueued when a named target does
        not exist; an enqueue failure propagates after releasing that job's dedup claim, so a
        retried request enqueues what is missing and gets the same ids for the rest."""
        names = list(target_names) if target_names is not None else None
        if names is not None:
            for name in names:
                self._registry.get(name)
        result = SubmissionResult()
        pairs: list[tuple[EnrichedAlert, Target]] = []
        for enriched in alerts:
            targets = self._registry.matching(enriched, names)
            if not targets:
                result.unrouted.append(enriched.alert.fingerprint)
            pairs += [(enriched, target) for target in targets]
        # One round trip for every claim of the request, one for every tracking entry.
        claims = [(dedup_key(enriched, target.name), self._new_id()) for enriched, target in pairs]
        holders: list[str | None] = [None] * len(claims)
        if self._window_s > 0 and claims:
            holders = self._take_over_stale(claims, self._dedup.claim_many(claims, self._window_s))
        now = self._clock()
        fresh: list[tuple[Job, str]] = []
        for (enriched, target), (key, job_id), holder in zip(pairs, claims, holders, strict=True):
            priority = priority_of(enriched)
            fingerprint = enriched.alert.fingerprint
            if holder is not None:
                result.jobs.append(SubmittedJob(holder, fingerprint, target.name, priority, duplicate=True))
                continue
            fresh.append((Job(job_id, target.name, priority, enriched, submitted_at=now), key))
            result.jobs.append(SubmittedJob(job_id, fingerprint, target.name, priority, duplicate=False))
        try:
            self._track([job for job, _ in fresh])
        except Exception:
            self._release_quietly([(key, job.job_id) for job, key in fresh])
            raise
        for index, (job, _) in enumerate(fresh):
            try:
                self._enqueuer.enqueue(job)
            except Exception:
                # What was enqueued stays claimed; the rest is released so that the client's
                # retry of this request enqueues exactly what is missing.
                self._release_quietly([(key, job.job_id) for job, key in fresh[index:]])
                raise
        return result

    def _take_over_stale(self, claims: list[tuple[str, str]], holders: list[str | None]) -> list[str | None]:
        """A claim whose job was never tracked belongs to a request that died before it got
        that far (an API process killed mid-request): take it over rather than answer
        "duplicate" with a job that does not exist."""
        held = [i for i, holder in enumerate(holders) if holder is not None]
        if not held:
            return holders
        known = self._tracker.known([str(holders[i]) for i in held])
        stale = [i for i, ok in zip(held, known, strict=True) if not ok]
        if not stale:
            return holders
        self._dedup.release_many([(claims[i][0], str(holders[i])) for i in stale])
        retaken = self._dedup.claim_many([claims[i] for i in stale], self._window_s)
        result = list(holders)
        for i, holder in zip(stale, retaken, strict=True):
            result[i] = holder
        return result

    def _release_quietly(self, claims: list[tuple[str, str]]) -> None:
        # Best effort: when Redis itself failed, the claims expire with the dedup window.
        with contextlib.suppress(Exception):
            self._dedup.release_many(claims)

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
            job_id=job_id or self._new_id(),
            target=target.name,
            priority=priority_of(enriched),
            alert=enriched,
            submitted_at=self._clock(),
            replayed_from=replayed_from,
        )
        self._track([job])
        self._enqueuer.enqueue(job)
        return job

    def _track(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        if self._gate is not None:
            for job in jobs:
                if job.alert.alert.status is AlertStatus.RESOLVED:
                    self._gate.note_resolved(job.target, job.alert.alert.fingerprint, job.submitted_at)
        self._tracker.record_many(
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
            ]
        )
