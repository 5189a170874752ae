"""An attempt's record on Redis in one round trip: its firing's leave of the order gate, its
job's tracking fields, what it says about its target's health, and its delivery-history
record, queued for the flusher (docs/design.md (Delivery history))."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.client import load_script, run_pipeline
from publishing.adapters.redis.health import RedisTargetHealth
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.history import AttemptRecord
from publishing.ordering import GateExit
from publishing.target_health import HealthEvent

# While the database is away the queue grows; past this many records the oldest go (the
# history loses them, delivery loses nothing). An attempt's record is about 1-2 KB.
MAX_QUEUED_RECORDS = 20_000


class RedisHistoryQueue:
    """Attempt records waiting for the database: a list appended to by every worker and
    drained from its head by one flusher at a time (a lock)."""

    def __init__(self, client: redis.Redis, prefix: str, capacity: int = MAX_QUEUED_RECORDS) -> None:
        self._client = client
        self.key = f"{prefix}:history:attempts"
        self._lock_key = f"{prefix}:history:lock"
        self._capacity = capacity
        self._unlock = load_script(client, "reconcile_unlock")

    def push(self, records: Sequence[AttemptRecord], client: Any = None) -> None:
        target = client if client is not None else self._client
        target.rpush(self.key, *[json.dumps(r.to_record(), separators=(",", ":")) for r in records])
        target.ltrim(self.key, -self._capacity, -1)

    def peek(self, count: int) -> tuple[list[AttemptRecord], int]:
        """The oldest ``count`` records, left queued until ``drop``, and how many were read; an
        unreadable one is skipped (only a bug writes one, and it must not wedge the queue)."""
        raw = self._client.lrange(self.key, 0, count - 1)
        records = []
        for item in raw:
            try:
                records.append(AttemptRecord.from_record(json.loads(item)))
            except (ValueError, KeyError, TypeError):
                continue
        return records, len(raw)

    def drop(self, count: int) -> None:
        """Remove the ``count`` oldest (what ``peek`` read: appends go to the tail)."""
        self._client.ltrim(self.key, count, -1)

    def depth(self) -> int:
        return int(self._client.llen(self.key))

    def lock(self, lock_s: float) -> str | None:
        token = uuid.uuid4().hex
        return token if self._client.set(self._lock_key, token, nx=True, px=int(lock_s * 1000)) else None

    def unlock(self, token: str) -> None:
        self._unlock(keys=[self._lock_key], args=[token])


class RedisAttemptLog:
    def __init__(
        self,
        client: redis.Redis,
        tracker: RedisJobTracker,
        health: RedisTargetHealth,
        history: RedisHistoryQueue | None = None,
        gate: RedisOrderGate | None = None,
    ) -> None:
        self._client = client
        self._tracker = tracker
        self._health = health
        self._history = history
        self._gate = gate

    def settle(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        target: str,
        events: list[HealthEvent],
        at: float,
        error: str | None,
        history: Sequence[AttemptRecord] = (),
        exits: Sequence[GateExit] = (),
    ) -> None:
        """``exits``: the attempt's leaves of the order gate, sent first. Raises the pipeline's
        error; the caller then leaves the gate on its own (``RedisOrderGate.leave_all``), as a
        delivered firing's ``fired`` mark is a promise, not a view."""
        if exits and self._gate is None:
            raise ValueError("settle was given leaves of the order gate but has no gate")

        def build(pipe: Pipeline) -> None:
            if exits and self._gate is not None:
                self._gate.leave_all(exits, client=pipe)
            if fields:
                self._tracker.update(job_id, client=pipe, **fields)
            self._health.record(target, events, at, error, client=pipe)
            if history and self._history is not None:
                self._history.push(history, client=pipe)

        if fields or events or history or exits:
            gate_scripts = self._gate.scripts if self._gate is not None else []
            run_pipeline(self._client, build, [*gate_scripts, *self._tracker.scripts, *self._health.scripts])


class RedisEventMarks:
    """Fleet-wide memory for operational events (``publishing.events``): an event about a
    target sent at most once a period, and a threshold's crossing sent once until it falls."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:events"

    def first(self, kind: str, subject: str, period_s: float) -> bool:
        key = f"{self._prefix}:sent:{kind}:{subject}"
        return bool(self._client.set(key, "1", nx=True, px=max(1, int(period_s * 1000))))

    def crossed(self, name: str, over: bool) -> bool:
        """True once when ``over`` becomes true; false again after it has been false."""
        key = f"{self._prefix}:over:{name}"
        if not over:
            self._client.delete(key)
            return False
        return bool(self._client.set(key, "1", nx=True))
