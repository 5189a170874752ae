"""Job tracking on Redis: one hash a job plus a recency index, capped and expiring."""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.client import eval_script, run_pipeline, text
from publishing.priority import Priority
from publishing.tracking import JobQuery, JobSnapshot, JobState

# KEYS: job hash, recency zset. ARGV: ttl_ms, capacity, score, job_id, job key prefix,
# field, value, ...
# Records the job, expires it, indexes it, and evicts the oldest beyond capacity or TTL.
_RECORD = """
redis.call('DEL', KEYS[1])
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  for _, id in ipairs(old) do redis.call('DEL', ARGV[5] .. id) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
local expired = tonumber(ARGV[3]) - tonumber(ARGV[1]) / 1000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. expired)
return over
"""

# KEYS: job hash. ARGV: field, value, ... (an empty value deletes the field). Only if tracked.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"""

# KEYS: job hash. ARGV: started_at, attempt key. Marks the job processing (when tracked) and
# returns how many times this attempt has started.
_START = """
local starts = redis.call('HINCRBY', KEYS[1], 'starts:' .. ARGV[2], 1)
redis.call('HSET', KEYS[1], 'state', 'processing', 'started_at', ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], 86400) end
return starts
"""

_FIELDS = (
    "id",
    "fingerprint",
    "alert_name",
    "target",
    "priority",
    "state",
    "retry_count",
    "error_type",
    "last_error",
    "submitted_at",
    "started_at",
    "completed_at",
    "delivered_via",
)


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, JobState | Priority):
        return value.value
    return str(value)


class RedisJobTracker:
    """One hash a job plus a recency index, capped and expiring (SPEC §8)."""

    def __init__(self, client: redis.Redis, *, prefix: str, capacity: int, ttl_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self._capacity = capacity
        self._ttl_ms = int(ttl_s * 1000)
        self._index = f"{prefix}:jobs"
        self._record = client.register_script(_RECORD)
        self._update = client.register_script(_UPDATE)
        self._start = client.register_script(_START)
        self.scripts = [self._record, self._update, self._start]

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def record(self, snapshot: JobSnapshot) -> None:
        self.record_many([snapshot])

    def record_many(self, snapshots: list[JobSnapshot]) -> None:
        def build(pipe: Pipeline) -> None:
            for snapshot in snapshots:
                self._record_one(snapshot, pipe)

        run_pipeline(self._client, build, [self._record])

    def _record_one(self, snapshot: JobSnapshot, client: Any) -> None:
        data = snapshot.to_dict()
        args: list[Any] = [
            self._ttl_ms,
            self._capacity,
            snapshot.submitted_at or 0,
            snapshot.id,
            self._key(""),
        ]
        for name in _FIELDS:
            if data.get(name) is not None:
                args += [name, _encode(data[name])]
        eval_script(self._record, [self._key(snapshot.id), self._index], args, client)

    def update(self, job_id: str, *, client: Any = None, **fields: Any) -> None:
        """``client`` may be a pipeline, to batch this with other writes."""
        args: list[str] = []
        for name, value in fields.items():
            if name not in _FIELDS:
                raise ValueError(f"unknown tracking field {name!r}")
            args += [name, _encode(value)]
        eval_script(self._update, [self._key(job_id)], args, client)

    def mark_started(self, job_id: str, attempt_key: str, started_at: float) -> int:
        return int(self._start(keys=[self._key(job_id)], args=[started_at, attempt_key]))

    def get(self, job_id: str) -> JobSnapshot | None:
        raw = self._client.hgetall(self._key(job_id))
        if not raw or b"id" not in raw:
            return None
        fields = {text(k): text(v) for k, v in raw.items()}
        return JobSnapshot.from_dict({k: v for k, v in fields.items() if ":" not in k})

    def _scan(self) -> list[tuple[str, list[bytes | None]]]:
        """(job id, [state, priority, target]) for every indexed job, newest first."""
        ids = [text(i) for i in self._client.zrevrange(self._index, 0, -1)]
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self._key(job_id), "state", "priority", "target")
        rows = pipe.execute() if ids else []
        stale = [job_id for job_id, row in zip(ids, rows, strict=True) if row[0] is None]
        if stale:
            self._client.zrem(self._index, *stale)
        return [(job_id, row) for job_id, row in zip(ids, rows, strict=True) if row[0] is not None]

    def list(self, query: JobQuery) -> tuple[list[JobSnapshot], int]:
        wanted = [
            None if query.state is None else query.state.value.encode(),
            None if query.priority is None else query.priority.value.encode(),
            None if query.target is None else query.target.encode(),
        ]
        matches = [
            job_id
            for job_id, row in self._scan()
            if all(w is None or w == v for w, v in zip(wanted, row, strict=True))
        ]
        jobs = [s for s in (self.get(j) for j in matches[: query.limit]) if s is not None]
        return jobs, len(matches)

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in JobState}
        for _, row in self._scan():
            state = row[0]
            if state is not None:
                counts[state.decode()] = counts.get(state.decode(), 0) + 1
        return counts
