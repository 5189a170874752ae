"""An attempt's record on Redis in one round trip: its job's tracking fields and what it says
about its target's health."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.client import run_pipeline
from publishing.adapters.redis.health import RedisTargetHealth
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.target_health import HealthEvent


class RedisAttemptLog:
    def __init__(self, client: redis.Redis, tracker: RedisJobTracker, health: RedisTargetHealth) -> None:
        self._client = client
        self._tracker = tracker
        self._health = health

    def settle(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        target: str,
        events: list[HealthEvent],
        at: float,
        error: str | None,
    ) -> None:
        def build(pipe: Pipeline) -> None:
            if fields:
                self._tracker.update(job_id, client=pipe, **fields)
            self._health.record(target, events, at, error, client=pipe)

        if fields or events:
            run_pipeline(self._client, build, [*self._tracker.scripts, *self._health.scripts])
