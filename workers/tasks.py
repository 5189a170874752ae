"""The publish task: runs one attempt and carries out the domain's ``Plan`` for it
(``publishing.plan``): tracking, a DLQ row, and a retry through Celery's autoretry.

Every retry — a backoff, a deferral, a Redis blip, a crash, a DLQ write that must wait — is
one ``PlannedRetry`` that autoretry hands to ``PublishTask.retry`` with the plan's countdown
and the next job as the message, unless the plan parks it in Redis (docs/design.md (Retries)).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import Reject

from publishing.adapters.composition import Services, services_for
from publishing.delivery import Redelivered, Start, health_events, unreadable_letter
from publishing.dlq import ReplayResult
from publishing.errors import DatabaseUnavailableError
from publishing.history import AttemptRecord, attempt_record
from publishing.job import Job
from publishing.ordering import GateExit
from publishing.plan import (
    Crashed,
    Event,
    LetterUnwritable,
    LetterWritten,
    Plan,
    RedisUnavailable,
    plan,
)
from publishing.routing import PUBLISH_TASK
from workers import mover, observe
from workers.celery_app import settings_of

log = logging.getLogger(__name__)


class DeadLettered(Exception):
    """The job failed for good and its dead letter is stored; the message is the reason.

    Raised after the row is written so that Celery records FAILURE (Flower shows it so, with
    the reason). The message is still acknowledged (``acks_late`` with Celery's default
    ``task_acks_on_failure_or_timeout``), never retried (not in ``autoretry_for``), and, being
    in ``throws``, logged as an expected outcome, without a traceback."""


class PlannedRetry(Exception):
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        super().__init__(plan.kind)


class PublishTask(Task):
    autoretry_for = (PlannedRetry,)
    throws = (DeadLettered,)
    max_retries = None  # the plan bounds every kind of retry
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    typing = False
    # A message the consumer cannot hand to the pool is dead-lettered, not fatal to the worker.
    Strategy = "workers.strategy:guarded"

    @property
    def backend(self) -> Any:
        # Results are ignored (no result backend): one disabled backend for the process, where
        # Celery builds one a thread, which on an I/O pool is one a greenlet, so one a job.
        if self._backend is None:  # type: ignore[has-type]  # Celery's class attribute
            self._backend = self.app.backend
        return self._backend

    @backend.setter
    def backend(self, value: Any) -> None:
        self._backend = value

    def retry(self, args: Any = None, kwargs: Any = None, exc: Any = None, **options: Any) -> Any:
        if isinstance(exc, PlannedRetry) and exc.plan.retry is not None:
            kwargs = {"message": exc.plan.retry.to_message()}
            options["countdown"] = exc.plan.countdown_s
        try:
            return super().retry(args=args, kwargs=kwargs, exc=exc, **options)
        except Reject as reject:
            if reject.requeue:
                raise
            # Publishing the retry message failed (a broker hiccup): Celery would drop the
            # job with Reject(requeue=False); put the original back on its queue instead.
            log.warning("retry of job %s could not be published; requeueing it", self.request.id)
            raise Reject(reject.reason, requeue=True) from None


def publish(task: PublishTask, message: dict[str, Any]) -> str:
    services = services_for(settings_of(task.app), task.app)
    try:
        job = Job.from_message(message)
    except Exception as exc:
        return _dead_letter_unreadable(task, services, message, exc)
    try:
        return _attempt(services, job)
    except (PlannedRetry, DeadLettered):
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        event: Event = RedisUnavailable(type(exc).__name__)
    except Exception as exc:
        # A bug of ours, or a Redis command refused (WRONGTYPE, OOM): bounded, then the DLQ.
        log.exception("job %s: the worker failed on it", job.job_id, extra=observe.context(job))
        event = Crashed(f"{type(exc).__name__}: {str(exc)[:200]}")
    return _carry_out(services, job, event)


def _attempt(services: Services, job: Job) -> str:
    if job.failure is not None:
        return _carry_out(services, job, _write_letter(services, job))
    now = time.time()
    start = Start(job.job_id, job.attempt_key, now, services.timings.max_starts)
    exits: list[GateExit] = []  # left in the settlement's round trip
    outcome = services.delivery.attempt(job, exits, start)
    if isinstance(outcome, Redelivered):
        return _carry_out(services, job, outcome, exits=exits)
    if job.retries == 0 and job.deferrals == 0 and start.count == 1:
        observe.waited(job, now)
    duration_s = time.time() - now
    observe.attempt(job, outcome, duration_s)
    observe.transitions(job, outcome)
    record = attempt_record(job, outcome, now, duration_s) if services.settings.history_enabled else None
    return _carry_out(services, job, outcome, record, exits)


def _carry_out(
    services: Services,
    job: Job,
    event: Event,
    record: AttemptRecord | None = None,
    exits: Sequence[GateExit] = (),
) -> str:
    now = time.time()
    p = plan(job, event, now, services.timings)
    observe.planned(job, p, event)
    events, error = health_events(event)
    try:
        history = [record] if record is not None else []
        target = job.via or job.target
        services.attempts.settle(job.job_id, p.settlement(), target, events, now, error, history, exits)
    except redis.RedisError as exc:
        # Tracking is a view: a job is never re-sent or held back because it is unreachable.
        log.warning("job %s: tracking not updated (%s)", job.job_id, type(exc).__name__)
        # The gate is not: a delivered firing's mark lets its resolve go (Firing before resolved).
        services.order_gate.leave_all(exits)
    # Operational events (docs/design.md (Events)): never a reason to hold the job up.
    services.events.after(job, event, now)
    if p.letter is not None:
        return _carry_out(services, p.letter, _write_letter(services, p.letter))
    if p.retry is not None:
        if p.parked and mover.park(services, p):
            return p.kind  # acknowledged: the job waits in Redis, not in a worker
        raise PlannedRetry(p)
    if p.replay is not None:
        _record_replay(services, job, p.replay)
    if p.kind == "dead_lettered":
        raise DeadLettered(p.reason)
    return p.kind


def _write_letter(services: Services, job: Job) -> LetterWritten | LetterUnwritable:
    try:
        services.dead_letters.write(services.delivery.letter_for(job))
    except DatabaseUnavailableError as exc:
        return LetterUnwritable(str(exc))
    except Exception as exc:
        # A bug building or storing the row: the job keeps waiting for its row (and says so),
        # it never escapes the task, which would acknowledge it away with no row.
        log.exception("job %s: its DLQ row could not be written", job.job_id, extra=observe.context(job))
        return LetterUnwritable(f"{type(exc).__name__}: {str(exc)[:200]}")
    return LetterWritten()


def _dead_letter_unreadable(task: PublishTask, services: Services, message: Any, exc: Exception) -> str:
    letter = unreadable_letter(message, str(task.request.id), f"{type(exc).__name__}: {exc}", time.time())
    log.error("job %s: unreadable message (%s); dead-lettering it", task.request.id, type(exc).__name__)
    try:
        services.dead_letters.write(letter)
    except Exception as write_error:
        # The database down (or a bug storing the row): keep the message, never drop it.
        if not isinstance(write_error, DatabaseUnavailableError):
            log.exception("job %s: the unreadable message's DLQ row could not be written", task.request.id)
        raise task.retry(countdown=services.timings.letter_waits_s[-1]) from None
    raise DeadLettered(f"dead-lettered: unreadable message ({type(exc).__name__})")


def _record_replay(services: Services, job: Job, result: ReplayResult) -> None:
    assert job.replayed_from is not None
    observe.replayed(job, result)
    try:
        services.dead_letters.set_replay_result(job.replayed_from, result, datetime.now(UTC))
    except DatabaseUnavailableError:
        log.warning("could not record replay result %s for dead letter %s", result.value, job.replayed_from)


def register(app: Celery) -> None:
    app.task(name=PUBLISH_TASK, base=PublishTask, bind=True)(publish)
