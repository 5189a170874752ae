"""Job tracking: the state of every job, visible to every API replica, and submission
de-duplication. The Redis implementations live in ``publishing.adapters.redis``, the
in-memory ones in ``publishing.testing``; one contract suite holds both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol

from publishing.priority import Priority

LAST_ERROR_MAX_CHARS = 500
# Tracking fields that are not part of a job's snapshot (never shown by the API).
MESSAGE_FIELDS = ("message", "wait_s", "reconciled")


class JobState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    RETRYING = "retrying"
    DEFERRED = "deferred"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DLQ = "dlq"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    fingerprint: str
    alert_name: str
    target: str
    priority: Priority
    state: JobState
    retry_count: int = 0
    error_type: str | None = None
    last_error: str | None = None
    submitted_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    delivered_via: str | None = None
    # The job whose message carried this job's alert, for a grouped target (docs/design.md
    # (Storm grouping)).
    carried_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["priority"] = self.priority.value
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSnapshot:
        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if value not in (None, "") else None

        return cls(
            id=str(data["id"]),
            fingerprint=str(data.get("fingerprint", "")),
            alert_name=str(data.get("alert_name", "")),
            target=str(data.get("target", "")),
            priority=Priority(data.get("priority", "medium")),
            state=JobState(data.get("state", "queued")),
            retry_count=int(data.get("retry_count") or 0),
            error_type=data.get("error_type") or None,
            last_error=data.get("last_error") or None,
            submitted_at=number("submitted_at"),
            started_at=number("started_at"),
            completed_at=number("completed_at"),
            delivered_via=data.get("delivered_via") or None,
            carried_by=data.get("carried_by") or None,
        )


@dataclass(frozen=True)
class JobQuery:
    state: JobState | None = None
    priority: Priority | None = None
    target: str | None = None
    limit: int = 100


class JobTracker(Protocol):
    """The recent jobs, at most a capacity of them (the oldest by submission time go first)
    and, in Redis, for a TTL. Listing and counting cost what they return, not what is
    tracked."""

    def record(self, snapshot: JobSnapshot) -> None:
        """Create or replace a job's entry."""
        ...

    def record_many(
        self, snapshots: list[JobSnapshot], messages: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """``record`` for several jobs at once (one round trip). ``messages`` holds, by job id,
        the message each job is about to be enqueued with, kept with its entry so that the
        reconciler can send exactly it again (docs/design.md (Reconciler))."""
        ...

    def update(self, job_id: str, *, client: Any = None, **fields: Any) -> None:
        """Change some fields of a tracked job (state, retry_count, started_at, ...); a job
        that is not tracked stays untracked. Besides the snapshot's fields: ``message`` (the
        job's next message, None drops it), ``wait_s`` (that message's countdown) and
        ``reconciled`` (times the reconciler sent it again). ``client``, where the store has
        one, batches the write with others (a Redis pipeline)."""
        ...

    def message(self, job_id: str) -> dict[str, Any] | None:
        """The message kept with a tracked job, if any."""
        ...

    def mark_started(self, job_id: str, attempt_key: str, started_at: float) -> int:
        """Set a tracked job ``processing`` and count how often this attempt has been started,
        tracked or not; more than once means the message was redelivered (a worker died
        mid-attempt). An untracked job gets no entry."""
        ...

    def get(self, job_id: str) -> JobSnapshot | None: ...

    def list(self, query: JobQuery) -> tuple[list[JobSnapshot], int]:
        """Newest first (by submission time), filtered, at most ``query.limit``; with the
        count of all matches."""
        ...

    def count_by_state(self) -> dict[str, int]:
        """Every state, with zero for a state no job is in."""
        ...


class ClaimStatus(StrEnum):
    NEW = "new"  # this request holds the claim now
    DUPLICATE = "duplicate"  # another request's job was enqueued under it
    PENDING = "pending"  # another request holds it and has not enqueued its job yet
    TAKEN_OVER = "taken_over"  # a pending claim left too long (its request died): ours now


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    job_id: str


class Deduplicator(Protocol):
    """Claims on submissions, so the same notification sent twice (HA Alertmanagers) becomes
    one job. A claim is *pending* until its job is enqueued and *enqueued* after; a pending
    claim older than the grace period belongs to a request that died, and is taken over with
    the same job id (so a job that did reach the broker is at worst delivered twice under
    one id, never lost)."""

    def claim_many(self, claims: list[tuple[str, str]], window_s: float, grace_s: float) -> list[Claim]:
        """Claim each (key, job id) for ``window_s`` (one round trip)."""
        ...

    def mark_enqueued(self, claims: list[tuple[str, str]]) -> None:
        """The jobs of these (key, job id) claims are on the broker."""
        ...

    def release_many(self, claims: list[tuple[str, str]]) -> None:
        """Drop pending claims whose jobs could not be enqueued."""
        ...


def truncate_error(text: str) -> str:
    return text if len(text) <= LAST_ERROR_MAX_CHARS else text[: LAST_ERROR_MAX_CHARS - 1] + "…"
