"""Bulk replay runs' progress on Redis (``publishing.replay.ReplayRunStore``): one hash a run,
expiring a week after its last update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from publishing.adapters.redis.client import text
from publishing.replay import ReplayRun

# Progress stays readable this long after the last page.
RUN_TTL_S = 7 * 86_400


@dataclass(frozen=True, slots=True, eq=False)
class RedisReplayRunStore:
    client: redis.Redis
    prefix: str = "publishing"
    ttl_s: int = RUN_TTL_S

    def _key(self, run_id: str) -> str:
        return f"{self.prefix}:replay:{run_id}"

    def save(self, run: ReplayRun) -> None:
        record: dict[Any, Any] = dict(run.to_record())
        pipe = self.client.pipeline()
        pipe.hset(self._key(run.run_id), mapping=record)
        pipe.expire(self._key(run.run_id), self.ttl_s)
        pipe.execute()

    def get(self, run_id: str) -> ReplayRun | None:
        raw = self.client.hgetall(self._key(run_id))
        if not raw:
            return None
        return ReplayRun.from_record({text(k): text(v) for k, v in raw.items()})
