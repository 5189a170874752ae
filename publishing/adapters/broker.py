"""The broker adapter: Celery's producer side on Redis. Jobs and replay pages are sent by task
name (so nothing that sends imports a task module), with the transport options every process
(API, workers, Flower) must agree on; and the broker is inspected for depths and workers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from kombu import Exchange, Queue

from publishing.adapters.redis.client import is_sentinel
from publishing.adapters.redis.queues import queue_depths
from publishing.job import Job
from publishing.replay import ReplayRun
from publishing.routing import PUBLISH_TASK, QUEUES, REPLAY_BATCH_TASK, REPLAY_QUEUE, QueueDepth, queue_for
from publishing.settings import Settings

log = logging.getLogger(__name__)

# A send that fails on a broker blip is tried again this way before the caller hears of it.
SEND_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 1}
PING_TIMEOUT_S = 0.5


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    sentinel = {"master_name": settings.redis_sentinel_master} if is_sentinel(settings.redis_url) else {}
    return {
        **sentinel,
        # Every process (API, workers, Flower) must agree on this; it outlasts the longest
        # countdown a worker holds as an ETA message (Settings checks that at start-up).
        "visibility_timeout": settings.visibility_timeout_s,
        # Fetch in the fixed order high, medium, low instead of rotating the queues.
        "queue_order_strategy": "priority",
        # We route priority by queue, not by message priority: one Redis list a queue, so
        # a fetch is one BRPOP over three keys instead of twelve.
        "priority_steps": [0],
        # Sweep for messages of dead workers every 5 s (one ZRANGE), not every 100 s, and let a
        # sweeper that died free the sweep mutex soon.
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 60,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
    }


def broker_config(settings: Settings) -> dict[str, Any]:
    """The Celery options a producer needs; the worker adds its own (``workers.config``)."""
    exchange = Exchange("publishing", type="direct")
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_queues": tuple(Queue(q, exchange, routing_key=q) for q in QUEUES),
        "task_default_queue": "medium",
        "task_default_exchange": "publishing",
        "task_default_routing_key": "medium",
        # Flower shows every job, from the moment it is sent.
        "task_send_sent_event": True,
    }


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only sends, by task name: it registers and imports no task."""
    app = Celery("publishing", set_as_current=False)
    app.conf.update(broker_config(settings))
    return app


class CeleryEnqueuer:
    """The submission port: a job becomes a ``publishing.publish`` message on the queue of its
    priority."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue(self, job: Job) -> None:
        queue = queue_for(job.priority)
        self._app.send_task(
            PUBLISH_TASK,
            kwargs={"message": job.to_message()},
            task_id=job.job_id,
            queue=queue,
            routing_key=queue,
            # Flower and the worker logs show this instead of the whole alert: cheaper to build,
            # smaller on the wire, and enough to find the job.
            argsrepr="()",
            kwargsrepr=f"{{job {job.job_id} to {job.target}, {job.priority.value}}}",
            retry=True,
            retry_policy=SEND_RETRY_POLICY,
        )


def send_replay_page(app: Celery, run_id: str, page: int, countdown: float | None = None) -> None:
    """Enqueue page ``page`` of a bulk replay run."""
    app.send_task(
        REPLAY_BATCH_TASK,
        kwargs={"run_id": run_id, "page": page},
        queue=REPLAY_QUEUE,
        routing_key=REPLAY_QUEUE,
        countdown=countdown,
        retry=True,
        retry_policy=SEND_RETRY_POLICY,
    )


class CeleryReplayRunner:
    """The ``ReplayRunner`` port: starts a saved run with its first page."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def start(self, run: ReplayRun) -> None:
        send_replay_page(self._app, run.run_id, run.pages)


class RedisQueueInspector:
    """Queue depths read from Redis and the workers seen, found with a short control ping."""

    def __init__(self, client: redis.Redis, app: Celery, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._app = app
        self._clock = clock

    def depths(self, *, with_age: bool = False) -> list[QueueDepth]:
        return queue_depths(self._client, with_age=with_age, now=self._clock())

    def workers(self) -> list[str] | None:
        try:
            replies = self._app.control.inspect(timeout=PING_TIMEOUT_S).ping() or {}
        except Exception as exc:
            # Workers seen is a nice-to-have in a stats answer: never fail the request for it.
            log.warning("could not ping workers: %s", type(exc).__name__)
            return None
        return sorted(replies)
