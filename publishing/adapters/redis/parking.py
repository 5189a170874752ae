"""Parked jobs on Redis (``publishing.parking.ParkingLot``; docs/design.md (Retries)): a sorted
set a queue scored by due time on Redis's clock, their messages in one hash, and claimed jobs
in an in-flight set scored by the end of their lease, each step one script."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby

import redis

from publishing.adapters.redis.client import load_script, text
from publishing.job import Job
from publishing.parking import LEASE_S, Claim
from publishing.routing import QUEUES, queue_for

READ_CHUNK = 1000


class RedisParkingLot:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        base = f"{prefix}:parked"
        # In fetch order (high, medium, low): a claim takes due jobs of a queue before the next.
        self.queue_keys = [f"{base}:{queue}" for queue in QUEUES]
        self.messages_key = f"{base}:messages"
        self.moving_key = f"{base}:moving"
        self.moving_messages_key = f"{base}:moving:messages"
        self._park = load_script(client, "park")
        self._claim = load_script(client, "park_claim")
        self._confirm = load_script(client, "park_confirm")

    def _queue_key(self, job: Job) -> str:
        return self.queue_keys[QUEUES.index(queue_for(job.priority))]

    def park(self, job: Job, wait_s: float) -> None:
        message = json.dumps(job.to_message(), separators=(",", ":"))
        wait_ms = max(0, int(wait_s * 1000))
        self._park(keys=[self._queue_key(job), self.messages_key], args=[job.job_id, wait_ms, message])

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[Claim]:
        keys = [self.moving_key, self.moving_messages_key, self.messages_key, *self.queue_keys]
        reply = self._claim(keys=keys, args=[limit, int(lease_s * 1000)])
        lease = int(text(reply[0]))
        pairs = reply[1:]
        return [
            Claim(text(job_id), json.loads(raw), lease)
            for job_id, raw in zip(pairs[::2], pairs[1::2], strict=True)
        ]

    def confirm(self, claims: Sequence[Claim]) -> None:
        for lease, same in groupby(sorted(claims, key=lambda c: c.lease), key=lambda c: c.lease):
            ids = [c.job_id for c in same]
            self._confirm(keys=[self.moving_key, self.moving_messages_key], args=[lease, *ids])

    def parked_ids(self) -> set[str]:
        found: set[str] = set()
        for key in [*self.queue_keys, self.moving_key]:
            start = 0
            while True:
                chunk = self._client.zrange(key, start, start + READ_CHUNK - 1)
                found.update(text(i) for i in chunk)
                start += len(chunk)
                if len(chunk) < READ_CHUNK:
                    break
        return found

    def count(self) -> int:
        pipe = self._client.pipeline(transaction=False)
        for key in [*self.queue_keys, self.moving_key]:
            pipe.zcard(key)
        return sum(int(n) for n in pipe.execute())
