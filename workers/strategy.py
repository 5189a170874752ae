"""The consumer's guard for handing a publish message to the pool: a message it cannot hand
over (pickling it for a prefork child overflows the stack) would otherwise end the whole
worker before any task starts, and with ``acks_late`` come back to end the next one. Such a
message is dead-lettered as it came and acknowledged; the worker goes on."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from celery import Celery, Task
from celery.exceptions import InvalidTaskError
from celery.worker import state
from celery.worker.strategy import default
from kombu.exceptions import ContentDisallowed, DecodeError

from publishing.adapters.composition import services_for
from publishing.delivery import unreadable_letter
from workers.celery_app import settings_of

log = logging.getLogger("workers.tasks")

# How long an unstorable message waits before it is requeued while the database is down: the
# consumer must not spin on it.
REQUEUE_AFTER_S = 5.0
# The consumer handles these itself (it logs and rejects the message).
_CONSUMER_HANDLES = (InvalidTaskError, ContentDisallowed, DecodeError, MemoryError)


def guarded(task: Task, app: Celery, consumer: Any, **options: Any) -> Any:
    """Celery's default strategy, with a message the pool cannot take dead-lettered."""
    handler = default(task, app, consumer, **options)
    connection_errors = tuple(consumer.connection_errors)

    def task_message_handler(
        message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any
    ) -> Any:
        try:
            return handler(message, body, ack, reject, callbacks, **kw)
        except _CONSUMER_HANDLES + connection_errors:
            raise
        except Exception as exc:
            _forget(consumer, message)
            if _dead_letter(app, message, exc):
                ack(log, connection_errors)
            else:
                consumer.timer.call_after(
                    REQUEUE_AFTER_S, lambda: reject(log, connection_errors, requeue=True)
                )
        return None

    return task_message_handler


def _dead_letter(app: Celery, message: Any, exc: Exception) -> bool:
    """Write the message's DLQ row: True once stored, False when the database is unreachable."""
    task_id = str(message.headers.get("id") or "")
    try:
        _, kwargs, _ = message.decode()
        raw = kwargs.get("message") if isinstance(kwargs, dict) else None
    except Exception:  # a body we cannot even decode is kept as its repr
        raw = {"body": repr(message.body)[:65_536]}
    error = f"{type(exc).__name__}: {str(exc)[:200]}"
    letter = replace(
        unreadable_letter(raw, task_id, error, time.time()),
        error_message=f"the job could not be handed to a worker process: {error}",
    )
    try:
        services_for(settings_of(app), app).dead_letters.write(letter)
    except Exception as unwritable:
        # The database down (or a bug storing the row): requeue it, never end the worker.
        log.error(
            "job %s could not be handed to a worker process (%s) and its DLQ row could not be "
            "written (%s: %s); requeueing it in %.0f s",
            task_id,
            error,
            type(unwritable).__name__,
            str(unwritable)[:200],
            REQUEUE_AFTER_S,
        )
        return False
    log.error("job %s could not be handed to a worker process (%s); dead-lettered", task_id, error)
    return True


def _forget(consumer: Any, message: Any) -> None:
    """Undo what handing the request over left behind: its place among the reserved requests,
    the pool's slot and the pool's record of a job that never started."""
    request = state.requests.get(str(message.headers.get("id") or ""))
    if request is None:
        return
    state.task_ready(request)
    controller = consumer.controller
    if getattr(controller, "semaphore", None) is not None and controller.process_task == getattr(
        controller, "_process_task_sem", None
    ):
        controller._quick_release()
    cache = getattr(getattr(consumer.pool, "_pool", None), "_cache", None)
    if isinstance(cache, dict):
        for job, result in list(cache.items()):
            if getattr(getattr(result, "_accept_callback", None), "__self__", None) is request:
                cache.pop(job, None)
