"""Parked jobs on Redis (``publishing.parking.ParkingLot``; docs/design.md (Retries)): a sorted
set a queue scored by due time on Redis's clock, their messages in one hash, and claimed jobs
in an in-flight set scored by the end of their lease, each step one script. A held job (one
whose target admits nothing) waits in its target's held set, scored by its latest time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby

import redis

from publishing.adapters.redis.client import load_script, text
from publishing.job import Job
from publishing.parking import LEASE_S, TRICKLE_S, Claim, Hold
from publishing.routing import QUEUES, queue_for

READ_CHUNK = 1000
# The most held jobs one claim releases, and the most due jobs it looks at: one call stays a
# few milliseconds of Redis's time whatever the backlog.
CLAIM_BUDGET = 2000


class RedisParkingLot:
    def __init__(self, client: redis.Redis, prefix: str, trickle_s: float = TRICKLE_S) -> None:
        self._client = client
        self._trickle_ms = int(trickle_s * 1000)
        base = f"{prefix}:parked"
        # The breaker's hash of a target is ``<breaker_prefix>{<target>}`` (breaker.py ``keys``).
        self.breaker_prefix = f"{prefix}:breaker:"
        # In fetch order (high, medium, low): a claim takes due jobs of a queue before the next.
        self.queue_keys = [f"{base}:{queue}" for queue in QUEUES]
        self.messages_key = f"{base}:messages"
        self.moving_key = f"{base}:moving"
        self.moving_messages_key = f"{base}:moving:messages"
        self.holds_key = f"{base}:holds"
        self.held_targets_key = f"{base}:held"
        self.held_prefix = f"{base}:held:"
        self.trickle_key = f"{base}:trickle"
        self._park = load_script(client, "park")
        self._claim = load_script(client, "park_claim")
        self._confirm = load_script(client, "park_confirm")

    def park(self, job: Job, wait_s: float, hold: Hold | None = None) -> None:
        message = json.dumps(job.to_message(), separators=(",", ":"))
        wait_ms = max(0, int(wait_s * 1000))
        index = QUEUES.index(queue_for(job.priority))
        target, latest_ms = (hold.target, max(wait_ms, int(hold.latest_s * 1000))) if hold else ("", 0)
        keys = [self.queue_keys[index], self.messages_key, self.holds_key]
        # Lua counts from 1.
        args: list[str | int] = [job.job_id, wait_ms, message, index + 1, target, latest_ms, self.held_prefix]
        self._park(keys=keys, args=args)

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[Claim]:
        keys = [
            self.moving_key,
            self.moving_messages_key,
            self.messages_key,
            *self.queue_keys,
            self.holds_key,
            self.held_targets_key,
            self.trickle_key,
        ]
        args: list[str | int] = [
            limit,
            int(lease_s * 1000),
            CLAIM_BUDGET,
            self.held_prefix,
            self.breaker_prefix,
            self._trickle_ms,
        ]
        reply = self._claim(keys=keys, args=args)
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

    def _held_keys(self) -> list[str]:
        return [self.held_prefix + text(t) for t in self._client.smembers(self.held_targets_key)]

    def parked_ids(self) -> set[str]:
        found: set[str] = set()
        # A claim moves a job from a queue to ``moving`` or to a held set, and a held one back
        # to a queue: held sets before and after the queues, ``moving`` last, find a job that
        # moved between two reads in one of them.
        for keys in (self._held_keys, lambda: self.queue_keys, self._held_keys, lambda: [self.moving_key]):
            for key in keys():
                found.update(self._members(key))
        return found

    def _members(self, key: str) -> set[str]:
        found: set[str] = set()
        start = 0
        while True:
            chunk = self._client.zrange(key, start, start + READ_CHUNK - 1)
            found.update(text(i) for i in chunk)
            start += len(chunk)
            if len(chunk) < READ_CHUNK:
                return found

    def count(self) -> int:
        pipe = self._client.pipeline(transaction=False)
        for key in [*self.queue_keys, self.moving_key, *self._held_keys()]:
            pipe.zcard(key)
        return sum(int(n) for n in pipe.execute())
