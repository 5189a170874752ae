"""Queue depths from the broker (``workers.queues``) and the workers seen, found with a short
control ping."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from celery import Celery

from workers.queues import QueueDepth, queue_depths

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 0.5


class RedisQueueInspector:
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
