"""Parked jobs in memory, on a ``FrozenClock`` (``publishing.parking.ParkingLot``)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence

from publishing.job import Job
from publishing.parking import LEASE_S, Claim
from publishing.routing import QUEUES, queue_for
from publishing.testing.clock import FrozenClock


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class InMemoryParkingLot:
    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        # queue -> job id -> (due in ms, sequence, message); the sequence orders equal dues as
        # Redis does, by member, closely enough for one job a due time.
        self.parked: dict[str, dict[str, tuple[int, int, dict]]] = {q: {} for q in QUEUES}
        # job id -> (lease end in ms, message)
        self.moving: dict[str, tuple[int, dict]] = {}
        self._seq = itertools.count()

    def park(self, job: Job, wait_s: float) -> None:
        due = _ms(self._clock()) + _ms(max(wait_s, 0.0))
        self.parked[queue_for(job.priority)][job.job_id] = (due, next(self._seq), job.to_message())

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[Claim]:
        now = _ms(self._clock())
        lease = now + _ms(lease_s)
        claims: list[Claim] = []
        expired = sorted((end, job_id) for job_id, (end, _) in self.moving.items() if end <= now)
        for _, job_id in expired[:limit]:
            message = self.moving[job_id][1]
            self.moving[job_id] = (lease, message)
            claims.append(Claim(job_id, copy.deepcopy(message), lease))
        for queue in QUEUES:
            entries = self.parked[queue]
            due = sorted((d, seq, job_id) for job_id, (d, seq, _) in entries.items() if d <= now)
            for _, _, job_id in due[: limit - len(claims)]:
                _, _, message = entries.pop(job_id)
                self.moving[job_id] = (lease, message)
                claims.append(Claim(job_id, copy.deepcopy(message), lease))
        return claims

    def confirm(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            entry = self.moving.get(claim.job_id)
            if entry is not None and entry[0] == claim.lease:
                del self.moving[claim.job_id]

    def parked_ids(self) -> set[str]:
        return {job_id for entries in self.parked.values() for job_id in entries} | set(self.moving)

    def count(self) -> int:
        return sum(len(entries) for entries in self.parked.values()) + len(self.moving)
