"""The publish task: carries out what ``DeliveryService`` decides for one attempt.

Retries of transient and unknown failures go through Celery's autoretry; the countdown is
the domain's (SPEC §5), set in ``PublishTask.retry``, which also keeps a job whose retry
message could not be published instead of letting Celery drop it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import Ignore, Reject, Retry
from redis.client import Pipeline

from publishing.adapters import metrics
from publishing.adapters.composition import Services, services_for
from publishing.adapters.logs import job_context
from publishing.adapters.redis.client import run_pipeline
from publishing.classification import ErrorType
from publishing.delivery import (
    Deferred,
    Delivered,
    Failed,
    Outcome,
    Rerouted,
    RetryScheduled,
    Superseded,
    health_events,
)
from publishing.dlq import DeadLetter, ReplayResult
from publishing.errors import DatabaseUnavailableError, RetryablePublishError
from publishing.job import Job
from publishing.priority import Priority
from publishing.routing import PUBLISH_TASK
from publishing.tracking import JobState

log = logging.getLogger(__name__)

# A message started this many times for the same attempt is a poison job that kills its
# worker: it goes to the DLQ instead of around forever.
MAX_REDELIVERIES = 3
# Times a job may crash the task (a bug, not the target) before it is dead-lettered.
MAX_CRASHES = 3
# While Redis (tracking, breaker) is unreachable, a job asks again after this long.
REDIS_RETRY_S = 2.0
# While the database is down, a job that failed for good asks again this often.
DLQ_WRITE_RETRY_S = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)


class RetryDue(RetryablePublishError):
    """The attempt failed transiently; the domain scheduled a retry."""

    def __init__(self, outcome: RetryScheduled, next_job: Job) -> None:
        self.outcome = outcome
        self.next_job = next_job
        super().__init__(outcome.error)


class PublishTask(Task):
    autoretry_for = (RetryDue,)
    max_retries = None  # the domain's policy bounds retries; Celery's counter also counts deferrals
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    typing = False

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        if isinstance(exc, RetryDue):
            countdown = exc.outcome.delay_s
            kwargs = {"message": exc.next_job.to_message()}
        if countdown is not None:
            # Never hold an ETA message past half the visibility timeout: a longer wait (an
            # open breaker, a pause) comes back early, finds it still waiting, and defers again.
            countdown = min(countdown, self.app.conf.publishing_settings.max_hold_s)
        try:
            return super().retry(
                args=args, kwargs=kwargs, exc=exc, throw=throw, eta=eta, countdown=countdown, **options
            )
        except Reject as reject:
            if reject.requeue:
                raise
            # Publishing the retry message failed (a broker hiccup): Celery would drop the
            # job with Reject(requeue=False); put the original back on its queue instead.
            log.warning("retry of job %s could not be published; requeueing it", self.request.id)
            raise Reject(reject.reason, requeue=True) from None


def _attempt_key(job: Job) -> str:
    return f"{job.retries}.{job.deferrals}.{1 if job.dead_letter else 0}"


def publish(task: PublishTask, message: dict[str, Any]) -> str:
    services = services_for(task.app.conf.publishing_settings)
    try:
        job = Job.from_message(message)
    except Exception as exc:
        return _dead_letter_unreadable(task, services, message, exc)
    try:
        return _publish(task, services, job)
    except (Retry, Reject, Ignore, RetryDue):
        raise
    except redis.RedisError as exc:
        # Tracking or the breaker is unreachable (a failover, a blip). Celery would record a
        # failure and acknowledge the message; retry the same job instead, spending nothing.
        log.warning(
            "job %s: Redis unavailable (%s); trying again in %.0f s",
            job.job_id,
            type(exc).__name__,
            REDIS_RETRY_S,
            extra=job_context(job),
        )
        raise task.retry(countdown=REDIS_RETRY_S, kwargs={"message": message}) from None
    except Exception as exc:
        # A bug of ours on this job. Celery would record a failure and acknowledge the message
        # (the job would be gone): try again a few times, then dead-letter it.
        crashed = job.evolve(crashes=job.crashes + 1)
        log.exception(
            "job %s: the worker failed on it (%d)", job.job_id, crashed.crashes, extra=job_context(job)
        )
        if crashed.crashes <= MAX_CRASHES and job.dead_letter is None:
            raise task.retry(
                countdown=2.0 * crashed.crashes, kwargs={"message": crashed.to_message()}
            ) from None
        if job.dead_letter is not None:
            # The DLQ write itself fails, and not because the database is down: keep the job.
            raise task.retry(
                countdown=DLQ_WRITE_RETRY_S[-1], kwargs={"message": crashed.to_message()}
            ) from None
        failed = Failed(
            ErrorType.UNKNOWN, f"the worker failed on this job {crashed.crashes} times ({type(exc).__name__})"
        )
        return _fail(task, services, crashed, failed)


def _dead_letter_unreadable(task: PublishTask, services: Services, message: Any, exc: Exception) -> str:
    """A message that is not a job we can read (written by a newer or broken producer): it
    goes to the DLQ as it came, so an operator can see it, never silently away."""
    raw: dict[str, Any] = message if isinstance(message, dict) else {"message": message}
    alert = raw.get("alert")
    enriched: dict[str, Any] = alert if isinstance(alert, dict) else {"raw": raw}
    inner = enriched.get("alert")
    priority = str(raw.get("priority"))
    target = str(raw.get("target", "unknown"))
    letter = DeadLetter(
        id=str(uuid.uuid4()),
        job_id=str(task.request.id),
        fingerprint=str(inner.get("fingerprint", "")) if isinstance(inner, dict) else "",
        target_name=target,
        target_type="unknown",
        enriched_alert=enriched,
        target_config={"name": target},
        error_message=f"the job message could not be read: {type(exc).__name__}: {exc}"[:500],
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority(priority) if priority in {p.value for p in Priority} else Priority.MEDIUM,
        failed_at=datetime.now(UTC),
    )
    log.error("job %s: unreadable message (%s); dead-lettering it", task.request.id, type(exc).__name__)
    try:
        services.dead_letters.write(letter)
    except DatabaseUnavailableError:
        raise task.retry(countdown=DLQ_WRITE_RETRY_S[-1]) from None
    return JobState.DLQ.value


def _publish(task: PublishTask, services: Services, job: Job) -> str:
    now = time.time()
    if job.dead_letter is not None:
        return _write_dead_letter(task, services, job)
    starts = services.tracker.mark_started(job.job_id, _attempt_key(job), now)
    if starts > MAX_REDELIVERIES:
        failed = Failed(ErrorType.PERMANENT, f"the job was redelivered {starts - 1} times without finishing")
        return _fail(task, services, job, failed)
    if job.retries == 0 and job.deferrals == 0 and starts == 1:
        metrics.JOB_WAIT.labels(job.priority.value).observe(max(0.0, now - job.submitted_at))

    outcome = services.delivery.attempt(job)
    _observe_attempt(job, outcome, time.time() - now)
    if isinstance(outcome, Delivered):
        _settle(services, job, outcome, state=JobState.SUCCEEDED, completed_at=time.time())
        if job.replayed_from:
            _record_replay(services, job, ReplayResult.SUCCESS)
        log.info(
            "job %s delivered to %s (%d)",
            job.job_id,
            job.target,
            outcome.status_code,
            extra=job_context(job, state="succeeded"),
        )
        return JobState.SUCCEEDED.value
    if isinstance(outcome, Rerouted):
        _settle(
            services,
            job,
            outcome,
            state=JobState.RETRYING,
            delivered_via=outcome.via,
            last_error=outcome.reason,
        )
        log.warning(
            "job %s: %s is down (%s); sending it to fallback %s",
            job.job_id,
            job.target,
            outcome.reason,
            outcome.via,
            extra=job_context(job, state="rerouted"),
        )
        rerouted = job.evolve(via=outcome.via, retries=0, deferred_since=None)
        raise task.retry(countdown=0, kwargs={"message": rerouted.to_message()})
    if isinstance(outcome, Superseded):
        _settle(services, job, outcome, state=JobState.SUPERSEDED, completed_at=time.time())
        log.info(
            "job %s to %s superseded: its alert resolved before it was delivered",
            job.job_id,
            job.target,
            extra=job_context(job, state="superseded"),
        )
        return JobState.SUPERSEDED.value
    if isinstance(outcome, Deferred):
        _settle(services, job, outcome, state=JobState.DEFERRED)
        deferred = job.evolve(deferrals=job.deferrals + 1, deferred_since=job.deferred_since or now)
        raise task.retry(countdown=outcome.delay_s, kwargs={"message": deferred.to_message()})
    if isinstance(outcome, RetryScheduled):
        _settle(
            services,
            job,
            outcome,
            state=JobState.RETRYING,
            retry_count=job.retries + 1,
            error_type=outcome.error_type,
            last_error=outcome.error,
        )
        log.info(
            "job %s to %s failed (%s), retry %d in %.2f s",
            job.job_id,
            job.target,
            outcome.error_type.value,
            job.retries + 1,
            outcome.delay_s,
            extra=job_context(job, error_type=outcome.error_type.value, state="retrying"),
        )
        raise RetryDue(outcome, job.evolve(retries=job.retries + 1, last_retry_at=now, deferred_since=None))
    return _fail(task, services, job, outcome)


def _settle(services: Services, job: Job, outcome: Outcome, **fields: Any) -> None:
    """Record an attempt's outcome, in one round trip: the job's tracking fields and what the
    outcome says about its target's health."""
    events, error = health_events(outcome)

    def build(pipe: Pipeline) -> None:
        services.tracker.update(job.job_id, client=pipe, **fields)
        services.health.record(job.via or job.target, events, time.time(), error, client=pipe)

    run_pipeline(services.redis, build, services.tracker.scripts + services.health.scripts)


def _fail(task: PublishTask, services: Services, job: Job, failed: Failed) -> str:
    _settle(
        services,
        job,
        failed,
        state=JobState.FAILED,
        retry_count=job.retries,
        error_type=failed.error_type,
        last_error=failed.error,
        completed_at=time.time(),
    )
    pending = job.evolve(
        dead_letter={"error_type": failed.error_type.value, "error": failed.error, "failed_at": time.time()}
    )
    return _write_dead_letter(task, services, pending)


def _write_dead_letter(task: PublishTask, services: Services, job: Job) -> str:
    assert job.dead_letter is not None
    letter = services.delivery.dead_letter(
        job, ErrorType(job.dead_letter["error_type"]), str(job.dead_letter["error"])
    )
    letter = _at(letter, job.dead_letter.get("failed_at"))
    try:
        services.dead_letters.write(letter)
    except DatabaseUnavailableError:
        attempt = task.request.retries or 0
        delay = DLQ_WRITE_RETRY_S[min(attempt, len(DLQ_WRITE_RETRY_S) - 1)]
        log.warning(
            "job %s failed for good but the DLQ is unreachable; writing again in %.0f s",
            job.job_id,
            delay,
            extra=job_context(job, error_type=letter.error_type.value, state="failed"),
        )
        raise task.retry(countdown=delay, kwargs={"message": job.to_message()}) from None
    if job.replayed_from:
        _record_replay(services, job, ReplayResult.FAILED)
    services.tracker.update(job.job_id, state=JobState.DLQ)
    metrics.DLQ_WRITES.labels(job.target, letter.error_type.value).inc()
    metrics.JOBS_PROCESSED.labels(job.target, JobState.DLQ.value).inc()
    log.warning(
        "job %s to %s dead-lettered (%s): %s",
        job.job_id,
        job.target,
        letter.error_type.value,
        letter.error_message,
        extra=job_context(job, error_type=letter.error_type.value, state="dlq"),
    )
    return JobState.DLQ.value


def _at(letter: DeadLetter, failed_at: float | None) -> DeadLetter:
    """The row says when the job failed, not when the database came back."""
    if failed_at is None:
        return letter
    return replace(letter, failed_at=datetime.fromtimestamp(failed_at, UTC))


def _record_replay(services: Services, job: Job, result: ReplayResult) -> None:
    assert job.replayed_from is not None
    metrics.DLQ_REPLAYS.labels(job.target, result.value).inc()
    try:
        services.dead_letters.set_replay_result(job.replayed_from, result, datetime.now(UTC))
    except DatabaseUnavailableError:
        log.warning(
            "could not record replay result %s for dead letter %s",
            result.value,
            job.replayed_from,
            extra=job_context(job),
        )


def _observe_attempt(job: Job, outcome: Outcome, duration_s: float) -> None:
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
    metrics.JOB_DURATION.labels(target, priority).observe(duration_s)
    attempt = metrics.attempt_label(job.retries + 1)
    if isinstance(outcome, Delivered):
        metrics.ATTEMPTS.labels(target, attempt, "success").inc()
        metrics.JOBS_PROCESSED.labels(target, JobState.SUCCEEDED.value).inc()
        metrics.END_TO_END.labels(priority, target).observe(max(0.0, time.time() - job.submitted_at))
        metrics.LAST_SUCCESS.labels(job.via or target).set(time.time())
        return
    metrics.ATTEMPTS.labels(target, attempt, "failure").inc()
    if isinstance(outcome, RetryScheduled | Failed):
        metrics.LAST_FAILURE.labels(job.via or target).set(time.time())
    if isinstance(outcome, RetryScheduled):
        metrics.RETRY_ATTEMPTS.labels(target, outcome.error_type.value).inc()
        metrics.JOBS_PROCESSED.labels(target, JobState.RETRYING.value).inc()
    else:
        metrics.JOBS_PROCESSED.labels(target, JobState.FAILED.value).inc()


def register(app: Celery) -> None:
    app.task(name=PUBLISH_TASK, base=PublishTask, bind=True)(publish)
