"""What a publish run tells the operator: a log line per plan, one line per breaker
transition and fallback, and the worker's metrics of attempts, waits, DLQ writes and replays."""

from __future__ import annotations

import logging
import time
from typing import Any

from publishing.adapters import metrics
from publishing.adapters.logs import job_context
from publishing.delivery import (
    Deferred,
    Delivered,
    Failed,
    Grouped,
    GroupWait,
    Outcome,
    Rerouted,
    RetryScheduled,
    Superseded,
)
from publishing.dlq import ReplayResult
from publishing.job import Job
from publishing.plan import Event, LetterWritten, Plan
from publishing.tracking import JobState

log = logging.getLogger("workers.tasks")


def context(job: Job, **more: Any) -> dict[str, Any]:
    return job_context(job, **more)


def waited(job: Job, now: float) -> None:
    """How long a new job waited on its queue before its first attempt."""
    metrics.JOB_WAIT.labels(job.priority.value).observe(max(0.0, now - job.submitted_at))


# Targets this worker process is sending to their fallback: the first job rerouted is logged
# at WARNING, the rest at DEBUG, until the target takes a job again.
_rerouting: set[str] = set()


def transitions(job: Job, outcome: Outcome) -> None:
    """One line when a breaker trips or recovers (the outcome of the attempt that moved it:
    one a transition, fleet-wide) and when a target starts or stops sending to its fallback."""
    target = job.via or job.target
    if isinstance(outcome, RetryScheduled | Failed) and outcome.tripped:
        log.warning(
            "breaker of target %s opened: too many consecutive failures (last: %s)",
            target,
            outcome.error,
            extra={"target": target, "breaker": "open", "error_type": outcome.error_type.value},
        )
    elif isinstance(outcome, Delivered) and outcome.recovered:
        log.info(
            "breaker of target %s closed: the target recovered",
            target,
            extra={"target": target, "breaker": "closed"},
        )
    if isinstance(outcome, Delivered) and job.via is None and job.target in _rerouting:
        _rerouting.discard(job.target)
        log.info("target %s takes jobs again: no more fallback", job.target, extra={"target": job.target})


# Plans that hold the job back for something other than the target: why, and the countdown.
_WAITING = {
    "redis_wait": "job %s: Redis unavailable; trying again in %.0f s",
    "crash_retry": "job %s: trying again in %.0f s after a crash",
    "letter_wait": "job %s failed for good but the DLQ is unreachable; writing again in %.0f s",
}


def planned(job: Job, p: Plan, event: Event) -> None:
    error_type = p.tracking.get("error_type")
    extra = context(job, state=p.kind, **({"error_type": error_type.value} if error_type else {}))
    if p.kind == "delivered":
        log.debug("job %s delivered to %s", job.job_id, job.via or job.target, extra=extra)
    elif p.kind == "retry":
        log.info(
            "job %s to %s failed (%s), retry %d in %.2f s",
            job.job_id,
            job.target,
            error_type.value if error_type else "unknown",
            job.retries + 1,
            p.countdown_s,
            extra=extra,
        )
    elif p.kind == "rerouted" and isinstance(event, Rerouted):
        first = job.target not in _rerouting
        _rerouting.add(job.target)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "job %s: %s is down (%s); sending it to fallback %s",
            job.job_id,
            job.target,
            event.reason,
            event.via,
            extra=extra,
        )
    elif p.kind == "superseded":
        log.info(
            "job %s to %s superseded: its alert resolved before it was delivered",
            job.job_id,
            job.target,
            extra=extra,
        )
    elif p.kind in _WAITING:
        log.warning(_WAITING[p.kind], job.job_id, p.countdown_s, extra=extra)
    elif isinstance(event, LetterWritten) and job.failure is not None:
        error_type_value = str(job.failure.get("error_type"))
        metrics.DLQ_WRITES.labels(job.target, error_type_value).inc()
        metrics.JOBS_PROCESSED.labels(job.target, JobState.DLQ.value).inc()
        log.warning(
            "job %s to %s dead-lettered (%s): %s",
            job.job_id,
            job.target,
            error_type_value,
            job.failure.get("error"),
            extra=context(job, error_type=error_type_value, state="dlq"),
        )


def replayed(job: Job, result: ReplayResult) -> None:
    metrics.DLQ_REPLAYS.labels(job.target, result.value).inc()


def attempt(job: Job, outcome: Outcome, duration_s: float) -> None:
    target, priority = job.target, job.priority.value
    if isinstance(outcome, Superseded):
        metrics.JOBS_PROCESSED.labels(target, JobState.SUPERSEDED.value).inc()
        return
    if isinstance(outcome, Rerouted):
        metrics.FALLBACKS.labels(target, outcome.via).inc()
        return
    if isinstance(outcome, Deferred):
        metrics.DEFERRALS.labels(job.via or target, outcome.reason.value).inc()
        metrics.JOBS_PROCESSED.labels(target, JobState.DEFERRED.value).inc()
        return
    if isinstance(outcome, Grouped | GroupWait):
        return  # sent, if at all, by its group's message: counted as the carrier's attempt
    metrics.JOB_DURATION.labels(target, priority).observe(duration_s)
    label = metrics.attempt_label(job.retries + 1)
    if isinstance(outcome, Delivered):
        metrics.ATTEMPTS.labels(target, label, "success").inc()
        metrics.JOBS_PROCESSED.labels(target, JobState.SUCCEEDED.value).inc()
        metrics.END_TO_END.labels(priority, target).observe(max(0.0, time.time() - job.submitted_at))
        metrics.LAST_SUCCESS.labels(job.via or target).set(time.time())
        return
    metrics.ATTEMPTS.labels(target, label, "failure").inc()
    if isinstance(outcome, RetryScheduled | Failed):
        metrics.LAST_FAILURE.labels(job.via or target).set(time.time())
    if isinstance(outcome, RetryScheduled):
        metrics.RETRY_ATTEMPTS.labels(target, outcome.error_type.value).inc()
        metrics.JOBS_PROCESSED.labels(target, JobState.RETRYING.value).inc()
    else:
        metrics.JOBS_PROCESSED.labels(target, JobState.FAILED.value).inc()
