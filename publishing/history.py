"""Delivery history (docs/design.md (Delivery history)): one record a delivery attempt, the
repository port that keeps them for the retention period, and the query over them.

Records are decided here, from an attempt's outcome; the worker hands them to Redis with its
tracking update and a flusher moves them to the database in batches."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from publishing.classification import ErrorType
from publishing.delivery import Delivered, Failed, Outcome, RetryScheduled
from publishing.dlq import as_utc
from publishing.errors import NotFoundError
from publishing.job import Job
from publishing.priority import Priority

# A response excerpt is a few lines of evidence, not the body: the publisher's error message
# is redacted and at most this long once here.
MAX_EXCERPT_CHARS = 500
# One INSERT a batch: bounded so a statement stays small whatever the backlog.
MAX_BATCH = 500
MAX_HISTORY_PAGE = 1000
DEFAULT_RETENTION_DAYS = 14

# "HTTP 503 from target 'pd': ..." is how the publisher names a target's answer.
_STATUS = re.compile(r"\bHTTP (\d{3})\b")


class AttemptResult(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a job: ``target`` is the job's, ``via`` the fallback it went to, if any;
    ``attempt`` counts from 1 on the target it went to. ``alert`` (the enriched alert) is kept
    once per job by the repository and is not read back with the attempts."""

    id: str
    job_id: str
    target: str
    via: str | None
    attempt: int
    attempted_at: datetime
    result: AttemptResult
    status_code: int | None
    duration_s: float
    error_type: ErrorType | None
    excerpt: str | None
    fingerprint: str
    alert_name: str
    priority: Priority
    alert: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def sent_to(self) -> str:
        return self.via or self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job_id": self.job_id,
            "target": self.target,
            "via": self.via,
            "attempt": self.attempt,
            "attempted_at": self.attempted_at.isoformat(),
            "result": self.result.value,
            "status_code": self.status_code,
            "duration_s": round(self.duration_s, 6),
            "error_type": self.error_type.value if self.error_type else None,
            "excerpt": self.excerpt,
            "fingerprint": self.fingerprint,
            "alert_name": self.alert_name,
            "priority": self.priority.value,
        }

    def to_record(self) -> dict[str, Any]:
        """As queued on Redis until it is flushed: the listing form plus the alert."""
        return {**self.to_dict(), "attempted_at": self.attempted_at.timestamp(), "alert": self.alert}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> AttemptRecord:
        error_type = data.get("error_type")
        return cls(
            id=str(data["id"]),
            job_id=str(data["job_id"]),
            target=str(data["target"]),
            via=data.get("via"),
            attempt=int(data["attempt"]),
            attempted_at=datetime.fromtimestamp(float(data["attempted_at"]), UTC),
            result=AttemptResult(data["result"]),
            status_code=data.get("status_code"),
            duration_s=float(data["duration_s"]),
            error_type=ErrorType(error_type) if error_type else None,
            excerpt=data.get("excerpt"),
            fingerprint=str(data["fingerprint"]),
            alert_name=str(data["alert_name"]),
            priority=Priority(data["priority"]),
            alert=data.get("alert"),
        )


def excerpt(text: str | None) -> str | None:
    if not text:
        return None
    return text if len(text) <= MAX_EXCERPT_CHARS else text[: MAX_EXCERPT_CHARS - 1] + "…"


def status_of(error: str) -> int | None:
    found = _STATUS.search(error)
    return int(found.group(1)) if found else None


def attempt_record(
    job: Job,
    outcome: Outcome,
    at: float,
    duration_s: float,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> AttemptRecord | None:
    """The record of an attempt that reached the publisher; None for an outcome that sent
    nothing (deferred, superseded, rerouted)."""
    status: int | None
    error_type: ErrorType | None
    error: str | None
    if isinstance(outcome, Delivered):
        result, status, error_type, error = AttemptResult.DELIVERED, outcome.status_code, None, None
    elif isinstance(outcome, RetryScheduled | Failed):
        result = AttemptResult.RETRY if isinstance(outcome, RetryScheduled) else AttemptResult.FAILED
        status, error_type, error = status_of(outcome.error), outcome.error_type, outcome.error
    else:
        return None
    alert = job.alert.alert
    return AttemptRecord(
        id=new_id(),
        job_id=job.job_id,
        target=job.target,
        via=job.via,
        attempt=job.retries + 1,
        attempted_at=datetime.fromtimestamp(at, UTC),
        result=result,
        status_code=status,
        duration_s=max(0.0, duration_s),
        error_type=error_type,
        excerpt=excerpt(error),
        fingerprint=alert.fingerprint,
        alert_name=alert.alert_name,
        priority=job.priority,
        alert=job.alert.to_dict(),
    )


@dataclass(frozen=True)
class HistoryQuery:
    fingerprint: str | None = None
    alert_name: str | None = None
    target: str | None = None
    since: datetime | None = None  # attempted at or after
    until: datetime | None = None  # attempted before

    def matches(self, record: AttemptRecord) -> bool:
        at = as_utc(record.attempted_at)
        return (
            (self.fingerprint is None or record.fingerprint == self.fingerprint)
            and (self.alert_name is None or record.alert_name == self.alert_name)
            and (self.target is None or record.target == self.target)
            and (self.since is None or at >= as_utc(self.since))
            and (self.until is None or at < as_utc(self.until))
        )


def history_not_found(attempt_id: str) -> NotFoundError:
    return NotFoundError(f"no attempt {attempt_id!r} in the delivery history")


class HistoryRepository(Protocol):
    def append(self, records: Sequence[AttemptRecord]) -> int:
        """Store the records (at most ``MAX_BATCH``) in one statement, and each job's alert
        once; a record already stored (same id) is skipped. Returns the records added;
        ``DatabaseUnavailableError`` when the database cannot be reached."""
        ...

    def query(
        self, query: HistoryQuery, limit: int = 100, offset: int = 0
    ) -> tuple[list[AttemptRecord], int]:
        """Newest first, with the total count of matches."""
        ...

    def attempts_of(self, job_id: str) -> list[AttemptRecord]:
        """A job's attempts, oldest first."""
        ...

    def get(self, attempt_id: str) -> AttemptRecord:
        """One attempt with its job's ``alert``; ``NotFoundError`` when there is none."""
        ...

    def prune(self, before: datetime, batch: int = MAX_BATCH) -> int:
        """Delete at most ``batch`` attempts older than ``before`` (and the alerts of jobs left
        with none); returns the attempts deleted."""
        ...
