"""Submission (SPEC §1, §8): alerts become jobs. Fan-out to the enabled targets whose filter
matches, priority, de-duplication within the window, tracking, then enqueue through a port."""

from __future__ import annotations

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
        plan: list[tuple[EnrichedAlert, list[Target]]] = [
            (a, self._registry.matching(a, names)) for a in alerts
        ]
        result = SubmissionResult()
        for enriched, targets in plan:
            if not targets:
                result.unrouted.append(enriched.alert.fingerprint)
            for target in targets:
                result.jobs.append(self._submit_one(enriched, target))
        return result

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
        self._track_and_enqueue(job)
        return job

    def _submit_one(self, enriched: EnrichedAlert, target: Target) -> SubmittedJob:
        priority = priority_of(enriched)
        job_id = self._new_id()
        key = dedup_key(enriched, target.name)
        existing = self._dedup.claim(key, job_id, self._window_s) if self._window_s > 0 else None
        fingerprint = enriched.alert.fingerprint
        if existing is not None:
            return SubmittedJob(existing, fingerprint, target.name, priority, duplicate=True)
        job = Job(job_id, target.name, priority, enriched, submitted_at=self._clock())
        try:
            self._track_and_enqueue(job)
        except Exception:
            self._dedup.release(key, job_id)
            raise
        return SubmittedJob(job_id, fingerprint, target.name, priority, duplicate=False)

    def _track_and_enqueue(self, job: Job) -> None:
        if self._gate is not None and job.alert.alert.status is AlertStatus.RESOLVED:
            self._gate.note_resolved(job.target, job.alert.alert.fingerprint, job.submitted_at)
        self._tracker.record(
            JobSnapshot(
                id=job.job_id,
                fingerprint=job.alert.alert.fingerprint,
                alert_name=job.alert.alert.alert_name,
                target=job.target,
                priority=job.priority,
                state=JobState.QUEUED,
                submitted_at=job.submitted_at,
            )
        )
        self._enqueuer.enqueue(job)
