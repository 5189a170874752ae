"""The shapes of the API's JSON bodies, declared once as pydantic models: what the routes
answer and the JSON bodies they take (breakers and targets are in ``api.schemas_targets``, the
inbound alert bodies in ``api.schemas_alerts``).
Enums are the domain's own, so the OpenAPI document generated from these models cannot drift
from the values the code uses."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt
from pydantic.json_schema import SkipJsonSchema

from api.schemas_query import DLQFilterFields
from api.schemas_targets import BreakerLabel
from publishing.classification import ErrorType
from publishing.dlq import MAX_PAGE, ReplayResult
from publishing.history import AttemptResult
from publishing.priority import Priority
from publishing.replay import RunState
from publishing.tracking import JobState

Count = NonNegativeInt


def every(enum: type[StrEnum]) -> Any:
    """A mapping keyed by ``enum`` holds every one of its values."""
    return Field(json_schema_extra={"required": [member.value for member in enum]})


# --- errors ---


class Problem(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    error: str = Field(
        description=(
            "A stable code such as invalid_alert, already_replayed or not_found (one code for every "
            "404; details.kind says what was missing)."
        )
    )
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] = Field(
        description="Data about the error: problems (a list of Problem), parameter, dependency, kind, ..."
    )


# --- alerts in ---


class SubmittedJob(BaseModel):
    id: str
    fingerprint: str
    target: str
    priority: Priority
    duplicate: bool


class SubmissionResult(BaseModel):
    jobs: list[SubmittedJob]
    unrouted: list[str] = Field(description="Fingerprints of alerts that no target's filter selected.")


# --- queue and jobs ---


class QueueStatus(BaseModel):
    depth: dict[Priority, Count] = every(Priority)
    total: Count


class QueueAge(BaseModel):
    depth: Count
    oldest_age_s: Annotated[float, Field(ge=0)] | None


class Workers(BaseModel):
    """Workers that answered a ping; null when they could not be asked."""

    count: Count | None
    names: list[str] | None


class JobCounts(BaseModel):
    submitted: Count
    succeeded: Count
    failed: Count
    dlq: Count
    by_state: dict[JobState, Count]


class QueueStats(BaseModel):
    queues: dict[Priority, QueueAge] = every(Priority)
    total: Count
    workers: Workers
    workers_seen_at: datetime | None = Field(
        description="When the workers listed answered the ping they were seen by (the list is kept "
        "for a few seconds, since a ping waits out its timeout); null before the first answer."
    )
    jobs: JobCounts
    breakers: dict[str, BreakerLabel]


class Job(BaseModel):
    id: str
    fingerprint: str
    alert_name: str
    target: str
    priority: Priority
    state: JobState
    retry_count: Count
    error_type: str | None
    last_error: str | None
    submitted_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    delivered_via: str | None = Field(description="The fallback target that took the job, if any.")
    carried_by: str | None = Field(
        None, description="The job whose grouped message carried this job's alert, if any."
    )


class JobList(BaseModel):
    jobs: list[Job]
    total: Count


# --- dead letters ---


class DeadLetter(BaseModel):
    id: str
    job_id: str
    fingerprint: str
    target_name: str
    target_type: str
    enriched_alert: dict[str, Any]
    target_config: dict[str, Any] = Field(description="The target, secrets shown as ***.")
    error_message: str
    error_type: ErrorType
    retry_count: Count
    last_retry_at: datetime | None
    priority: Priority
    failed_at: datetime
    created_at: datetime | None
    updated_at: datetime | None
    replayed: bool
    replayed_at: datetime | None
    replay_result: ReplayResult | None
    replay_job_id: str | None
    replayed_from: str | None
    delivered_via: str | None = Field(description="The fallback target last tried, if any.")


class Attempt(BaseModel):
    """One delivery attempt (docs/design.md (Delivery history))."""

    id: str
    job_id: str
    target: str = Field(description="The job's target.")
    via: str | None = Field(description="The fallback target the attempt went to, if any.")
    attempt: Annotated[int, Field(ge=1)]
    attempted_at: datetime
    result: AttemptResult
    status_code: int | None = Field(description="The target's HTTP status, when it answered.")
    duration_s: float
    error_type: ErrorType | None
    excerpt: str | None = Field(description="The redacted error, at most 500 characters.")
    fingerprint: str
    alert_name: str
    priority: Priority


class HistoryPage(BaseModel):
    attempts: list[Attempt]
    total: Count


class JobAttempts(BaseModel):
    job_id: str
    attempts: list[Attempt] = Field(description="Oldest first.")


class ResendAccepted(BaseModel):
    job_id: str
    target: str
    attempt_id: str


class DeadLetterPage(BaseModel):
    entries: list[DeadLetter]
    total: Count
    limit: Count
    offset: Count


class DLQStats(BaseModel):
    total: Count
    by_error_type: dict[ErrorType, Count]
    by_target: dict[str, Count]
    by_priority: dict[Priority, Count]
    oldest: datetime | None
    newest: datetime | None
    replayed: Count


class ReplayAccepted(BaseModel):
    job_id: str
    dead_letter_id: str
    target: str
    priority: Priority


class BulkReplayRequest(DLQFilterFields):
    """Filters select unreplayed rows that failed before the run was created."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False


class ReplayRun(BaseModel):
    run_id: str
    state: RunState
    dry_run: bool
    total: Count = Field(description="Rows the run covers.")
    done: Count = Field(description="Rows replayed.")
    failed: Count = Field(description="Rows that could not be replayed (left unreplayed).")
    skipped: Count = Field(description="Rows replayed or purged by someone else meanwhile.")
    filters: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    ids: list[str] | SkipJsonSchema[None] = Field(
        None, description=f"Dry run only: the rows that would be replayed (at most {MAX_PAGE})."
    )
    ids_truncated: bool | SkipJsonSchema[None] = Field(None, description="Dry run only.")


class PurgeResult(BaseModel):
    deleted_count: Count
    older_than: str
    cutoff: datetime
    replayed_only: bool
    dry_run: bool
    would_delete: Count | None = Field(None, description="A dry run only: the rows a purge would delete.")


# --- health ---


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    redis: Literal["ok"]
    database: Literal["ok"]
    auth: str = Field(
        pattern="^(tokens|off)$",
        description="tokens; or off: PUBLISHING_INSECURE_NO_AUTH=1 without tokens, every caller is admin.",
    )
