"""Bulk DLQ replay in the background: the ``publishing.replay_batch`` task and the Redis hash
that keeps a run's progress.

A run goes one page a message on the ``low`` queue, each page sending the next, so it never
holds a worker slot for long; each replayed job goes to the queue of its own priority, and a
page waits while the ``high`` queue has a backlog, so a replay never delays new high alerts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import redis
from celery import Celery, Task

from publishing.errors import DatabaseUnavailableError
from publishing.priority import Priority
from publishing.replay import Replayer, ReplayRun, RunState
from workers.enqueue import CeleryEnqueuer
from workers.routing import REPLAY_BATCH_TASK, queue_for
from workers.runtime import services_for

log = logging.getLogger(__name__)

REPLAY_QUEUE = queue_for(Priority.LOW)
# Progress stays readable this long after the last page.
RUN_TTL_S = 7 * 86_400
# A page waits while more than this many messages wait on the high queue (about one page of
# replayed high jobs), and asks again after BACKLOG_WAIT_S.
HIGH_BACKLOG_LIMIT = 100
BACKLOG_WAIT_S = 2.0
# While the dead-letter database is down, a page asks again this often.
DATABASE_RETRY_S = 10.0


def pending(client: redis.Redis, queue: str) -> int:
    """Messages waiting on a queue, counting kombu's priority sub-lists."""
    pipe = client.pipeline(transaction=False)
    for key in (queue, *(f"{queue}\x06\x16{n}" for n in (3, 6, 9))):
        pipe.llen(key)
    return sum(int(n) for n in pipe.execute())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisReplayRunStore:
    """One hash a run, expiring ``RUN_TTL_S`` after its last update."""

    def __init__(self, client: redis.Redis, prefix: str = "publishing", ttl_s: int = RUN_TTL_S) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}:replay:{run_id}"

    def save(self, run: ReplayRun) -> None:
        record: dict[Any, Any] = dict(run.to_record())
        pipe = self._client.pipeline()
        pipe.hset(self._key(run.run_id), mapping=record)
        pipe.expire(self._key(run.run_id), self._ttl_s)
        pipe.execute()

    def get(self, run_id: str) -> ReplayRun | None:
        raw = self._client.hgetall(self._key(run_id))
        if not raw:
            return None
        return ReplayRun.from_record({_text(k): _text(v) for k, v in raw.items()})


def send_page(app: Celery, run_id: str, page: int, countdown: float | None = None) -> None:
    """Enqueue page ``page`` of a run by task name (the API does this too)."""
    app.send_task(
        REPLAY_BATCH_TASK,
        kwargs={"run_id": run_id, "page": page},
        queue=REPLAY_QUEUE,
        routing_key=REPLAY_QUEUE,
        countdown=countdown,
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 1},
    )


class CeleryReplayRunner:
    """The ``ReplayRunner`` port on Celery: starts a saved run with its first page."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def start(self, run: ReplayRun) -> None:
        send_page(self._app, run.run_id, run.pages)


class ReplayBatchTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    typing = False


def replay_batch(task: ReplayBatchTask, run_id: str, page: int = 0) -> str:
    services = services_for(task.app.conf.publishing_settings)
    store = RedisReplayRunStore(services.redis, services.settings.key_prefix)
    run = store.get(run_id)
    if run is None:
        log.warning("replay run %s is unknown or has expired; nothing to do", run_id)
        return "missing"
    if run.finished or run.pages != page:
        # A redelivered message for a page already run: the run has moved on without it.
        return run.state.value
    if pending(services.redis, queue_for(Priority.HIGH)) > HIGH_BACKLOG_LIMIT:
        send_page(task.app, run_id, page, countdown=BACKLOG_WAIT_S)
        return "waiting"
    if run.state is RunState.QUEUED:
        run = replace(run, state=RunState.RUNNING)
        store.save(run)
    replayer = Replayer(
        services.dead_letters,
        services.registry,
        services.tracker,
        services.deduplicator,
        CeleryEnqueuer(task.app),
        order_gate=services.order_gate,
        clock=time.time,
    )
    try:
        run = replayer.replay_page(run)
    except DatabaseUnavailableError:
        log.warning("replay run %s: the DLQ database is unavailable; page %d again later", run_id, page)
        store.save(replace(run, error="the dead-letter database is unavailable; retrying"))
        send_page(task.app, run_id, page, countdown=DATABASE_RETRY_S)
        return "waiting"
    store.save(run)
    if not run.finished:
        send_page(task.app, run_id, run.pages)
    else:
        log.info(
            "replay run %s %s: %d replayed, %d failed, %d skipped of %d",
            run_id,
            run.state.value,
            run.done,
            run.failed,
            run.skipped,
            run.total,
        )
    return run.state.value


def register(app: Celery) -> None:
    app.task(name=REPLAY_BATCH_TASK, base=ReplayBatchTask, bind=True, queue=REPLAY_QUEUE)(replay_batch)
