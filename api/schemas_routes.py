"""The route table of the OpenAPI document (``api.openapi``): what the code cannot say about a
route, keyed by its Flask endpoint. Paths, methods, roles, query parameters and caps are not
here: the generator reads them from the app, the views and the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from api import schemas as s
from api import schemas_targets as t

JSON = "application/json"


@dataclass(frozen=True)
class Operation:
    """What the code cannot say about a route. ``body`` and ``answer`` name a model of
    ``api.schemas`` or a hand-described component; ``errors`` are shared error responses."""

    summary: str
    tag: str
    status: int
    answer: type[BaseModel] | str | None
    answered: str
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | str | None = None
    body_required: bool = True
    path: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    content: Mapping[str, Any] | None = None
    notes: Mapping[int, str] = field(default_factory=dict)


_ROW_ID = {"letter_id": "The row id (a UUID); any other names no row (404, details.kind dead_letter)."}
_TARGET = {"name": "The target name."}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}

OPERATIONS: Mapping[str, Operation] = {
    "webhook.webhook": Operation(
        "Receive an Alertmanager (v4) webhook: one job per alert and matching target",
        "alerts", 202, s.SubmissionResult, "Accepted", (400, 413, 422, 503), body="AlertmanagerWebhook",
    ),
    "webhook.submit": Operation(
        "Submit enriched alerts, optionally to named targets",
        "alerts", 202, s.SubmissionResult, "Accepted", (400, 404, 413, 422, 503), body="SubmitRequest",
    ),
    "queue.status": Operation("Queue depth by priority", "queue", 200, s.QueueStatus, "Depths", (503,)),
    "queue.stats": Operation(
        "Depth and oldest pending age per queue, workers, job counts and breaker states",
        "queue", 200, s.QueueStats, "Statistics", (503,),
    ),
    "jobs.list_jobs": Operation("Tracked jobs, newest first", "jobs", 200, s.JobList, "Jobs", (400, 503)),
    "jobs.get_job": Operation(
        "One tracked job", "jobs", 200, s.Job, "The job", (404, 503), path={"job_id": "The job id."}
    ),
    "history.list_attempts": Operation(
        "Delivery attempts, newest first, kept PUBLISHING_HISTORY_RETENTION_DAYS",
        "jobs", 200, s.HistoryPage, "A page of attempts", (400, 503),
    ),
    "history.job_attempts": Operation(
        "A job's delivery attempts, oldest first", "jobs", 200, s.JobAttempts, "The attempts", (503,),
        path={"job_id": "The job id."},
    ),
    "history.resend": Operation(
        "Send an attempt's alert to the target it went to again, as a new job",
        "jobs", 202, s.ResendAccepted, "The new job is queued", (404, 409, 503),
        path={"attempt_id": "The attempt id; anything but a UUID names none (404)."},
    ),
    "dlq.list_entries": Operation(
        "Dead letters, newest first", "dlq", 200, s.DeadLetterPage, "A page of rows", (400, 503)
    ),
    "dlq.stats": Operation("DLQ statistics", "dlq", 200, s.DLQStats, "Statistics", (503,)),
    "dlq.get_entry": Operation(
        "One dead letter", "dlq", 200, s.DeadLetter, "The row", (404, 503), path=_ROW_ID
    ),
    "dlq.replay_one": Operation(
        "Replay one dead letter (once: a second replay is a 409)",
        "dlq", 202, s.ReplayAccepted, "The replay job is queued", (404, 409, 503), path=_ROW_ID,
    ),
    "dlq.replay_many": Operation(
        "Replay every unreplayed row matching the filters, in the background (or list them: dry_run)",
        "dlq", 202, s.ReplayRun, "The run; GET the Location header for its progress.",
        (400, 413, 422, 503), body=s.BulkReplayRequest, body_required=False,
        headers={"Location": "Where the run's progress is."},
    ),
    "dlq.replay_progress": Operation(
        "Progress of a bulk replay run (kept 7 days)",
        "dlq", 200, s.ReplayRun, "The run", (404, 503), path={"run_id": "The run id."},
    ),
    "dlq.purge": Operation(
        "Delete rows that failed longer ago than older_than",
        "dlq", 200, s.PurgeResult, "What was deleted", (400, 503),
    ),
    "targets.list_targets": Operation(
        "Targets with secrets redacted, each with its breaker and health", "targets", 200, t.TargetList, "Targets",
        (503,),
    ),
    "targets.get_target": Operation(
        "One target, redacted, with its breaker and health: success rate, last success, last "
        "failure and its error, breaker history, pauses, rate limiting and fallback use",
        "targets", 200, t.Target, "The target", (404, 503), path=_TARGET,
    ),
    "targets.schema": Operation(
        "The JSON Schema of a targets file (PUBLISHING_TARGETS), as shipped in deploy/targets.schema.json",
        "targets", 200, None, "JSON Schema 2020-12",
        content={JSON: {"schema": {"type": "object"}}},
    ),
    "targets.send_test": Operation(
        "Send a synthetic test alert to a target through the whole pipeline",
        "targets", 202, t.TestAlertAccepted, "The test job is queued", (400, 404, 409, 413, 422, 503),
        body=t.TestAlertRequest, body_required=False, path=_TARGET,
    ),
    "breakers.list_breakers": Operation(
        "Every target's circuit breaker", "breakers", 200, t.BreakerList, "Breakers", (503,)
    ),
    "breakers.reset": Operation(
        "Close a target's breaker", "breakers", 200, t.BreakerStatus, "The breaker after the reset",
        (404, 503), path={"target": "The target name."},
    ),
    "health.healthz": Operation("Liveness", "health", 200, s.Health, "The process serves"),
    "health.readyz": Operation(
        "Readiness: Redis answers PING and the database SELECT 1", "health", 200, s.Ready, "Ready", (503,),
        notes={503: "Not ready; details says which dependency is down."},
    ),
    "metrics.scrape": Operation(
        "Prometheus metrics: this process's counters and the fleet's queues, breakers and DLQ",
        "health", 200, None, "Prometheus text exposition format", content=_TEXT,
    ),
    "openapi.openapi_json": Operation(
        "This document", "health", 200, None, "OpenAPI 3.1",
        content={JSON: {"schema": {"type": "object"}}},
    ),
}  # fmt: skip
# Component models no operation names directly.
EXTRA_MODELS: tuple[type[BaseModel], ...] = (s.Error, s.Problem)
