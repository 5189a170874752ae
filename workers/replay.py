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

from celery import Celery, Task

from publishing.adapters.broker import CeleryEnqueuer, send_replay_page
from publishing.adapters.composition import services_for
from publishing.adapters.redis.queues import pending
from publishing.adapters.redis.replay_runs import RedisReplayRunStore
from publishing.errors import DatabaseUnavailableError
from publishing.priority import Priority
from publishing.replay import Replayer, RunState
from publishing.routing import REPLAY_BATCH_TASK, REPLAY_QUEUE, queue_for
from workers.celery_app import settings_of

log = logging.getLogger(__name__)

# A page waits while more than this many messages wait on the high queue (about one page of
# replayed high jobs), and asks again after BACKLOG_WAIT_S.
HIGH_BACKLOG_LIMIT = 100
BACKLOG_WAIT_S = 2.0
# While the dead-letter database is down, a page asks again this often.
DATABASE_RETRY_S = 10.0


class ReplayBatchTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    typing = False


def replay_batch(task: ReplayBatchTask, run_id: str, page: int = 0) -> str:
    services = services_for(settings_of(task.app), task.app)
    store = RedisReplayRunStore(services.redis, services.settings.key_prefix)
    run = store.get(run_id)
    if run is None:
        log.warning("replay run %s is unknown or has expired; nothing to do", run_id)
        return "missing"
    if run.finished or run.pages != page:
        # A redelivered message for a page already run: the run has moved on without it.
        return run.state.value
    if pending(services.redis, queue_for(Priority.HIGH)) > HIGH_BACKLOG_LIMIT:
        send_replay_page(task.app, run_id, page, countdown=BACKLOG_WAIT_S)
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
        send_replay_page(task.app, run_id, page, countdown=DATABASE_RETRY_S)
        return "waiting"
    store.save(run)
    if not run.finished:
        send_replay_page(task.app, run_id, run.pages)
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
