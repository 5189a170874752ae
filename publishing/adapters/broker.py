"""The broker adapter: Celery's producer side on Redis. Jobs and replay pages are sent by task
name (so nothing that sends imports a task module), with the transport options every process
(API, workers, Flower) must agree on; and the broker is inspected for depths and workers."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Celery
from celery.utils.nodenames import anon_nodename
from celery.utils.time import utcoffset
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
# Celery's event exchange: Flower and ``celery events`` listen on it.
EVENT_EXCHANGE = "celeryev"


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
        self._origin = ("", 0)

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
            kwargsrepr=_kwargsrepr(job),
            retry=True,
            retry_policy=SEND_RETRY_POLICY,
        )

    def enqueue_many(self, jobs: Sequence[Job]) -> None:
        """Every job of a request in one Redis transaction: one LPUSH a queue, high first, then
        the jobs' task-sent events. A line lost before EXEC runs none of it; a reply lost after
        it, or a command Redis refuses inside it, leaves some or all of it done. Either way the
        error propagates and the caller must treat every job as possibly sent (docs/design.md
        (Reconciler))."""
        if not jobs:
            return
        origin = self._origin_name()
        by_queue: dict[str, list[str]] = {queue: [] for queue in QUEUES}
        for job in jobs:
            by_queue[queue_for(job.priority)].append(_task_envelope(job, origin))
        events = self._app.conf.task_send_sent_event
        with self._app.pool.acquire(block=True) as connection:
            channel = connection.default_channel
            with channel.client.pipeline(transaction=True) as pipe:
                # QUEUES is high, medium, low; within a queue LPUSH keeps the request's order
                # for BRPOP, which takes from the other end.
                for queue, messages in by_queue.items():
                    if messages:
                        pipe.lpush(queue, *messages)
                if events:
                    (topic,) = channel._get_publish_topics(EVENT_EXCHANGE, "task.sent")
                    for job in jobs:
                        pipe.publish(topic, _sent_event(job, origin, self._app.clock.forward()))
                pipe.execute()

    def _origin_name(self) -> str:
        # What Celery puts in a message's ``origin``: this process, named once per pid (the API
        # forks its workers after the app is built).
        name, pid = self._origin
        if pid != os.getpid():
            self._origin = name, pid = anon_nodename(), os.getpid()
        return name


def _kwargsrepr(job: Job) -> str:
    return f"{{job {job.job_id} to {job.target}, {job.priority.value}}}"


def _encode(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _task_envelope(job: Job, origin: str) -> str:
    """The message ``send_task`` would put on the queue (Celery's task protocol 2 in kombu's
    Redis envelope), built directly: a request's jobs then cost one JSON encoding each instead
    of a trip through kombu's producer."""
    queue = queue_for(job.priority)
    kwargsrepr = _kwargsrepr(job)
    headers: dict[str, Any] = {
        "lang": "py",
        "task": PUBLISH_TASK,
        "id": job.job_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": job.job_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": kwargsrepr,
        "origin": origin,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body = [
        [],
        {"message": job.to_message()},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]
    return json.dumps(
        {
            "body": _encode(body),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": job.job_id,
                "argsrepr": "()",
                "kwargsrepr": kwargsrepr,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def _sent_event(job: Job, origin: str, clock: int) -> str:
    """The ``task-sent`` event Celery's producer would publish for the job (Flower shows it)."""
    queue = queue_for(job.priority)
    event = {
        "hostname": origin,
        "utcoffset": utcoffset(),
        "pid": os.getpid(),
        "clock": clock,
        "uuid": job.job_id,
        "root_id": job.job_id,
        "parent_id": None,
        "name": PUBLISH_TASK,
        "args": "()",
        "kwargs": _kwargsrepr(job),
        "retries": 0,
        "eta": None,
        "expires": None,
        "queue": queue,
        "exchange": "",
        "routing_key": queue,
        "timestamp": time.time(),
        "type": "task-sent",
    }
    return json.dumps(
        {
            "body": _encode(event),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"hostname": origin},
            "properties": {
                "delivery_mode": 1,
                "delivery_info": {"exchange": EVENT_EXCHANGE, "routing_key": "task.sent"},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
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
