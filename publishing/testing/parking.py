"""Parked jobs in memory, on a ``FrozenClock`` (``publishing.parking.ParkingLot``); held jobs
wait behind an ``InMemoryBreakerStore``'s breakers and pauses."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence

from publishing.job import Job
from publishing.parking import LEASE_S, TRICKLE_S, Claim, Hold
from publishing.routing import QUEUES, queue_for
from publishing.testing.breaker import InMemoryBreakerStore
from publishing.testing.clock import FrozenClock


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class InMemoryParkingLot:
    def __init__(
        self, clock: FrozenClock, breakers: InMemoryBreakerStore | None = None, trickle_s: float = TRICKLE_S
    ) -> None:
        self._clock = clock
        self._trickle_ms = _ms(trickle_s)
        self._breakers = breakers
        # queue -> job id -> (due in ms, sequence, message); the sequence orders equal dues as
        # Redis does, by member, closely enough for one job a due time.
        self.parked: dict[str, dict[str, tuple[int, int, dict]]] = {q: {} for q in QUEUES}
        # job id -> (lease end in ms, message)
        self.moving: dict[str, tuple[int, dict]] = {}
        self._seq = itertools.count()
        # job id -> (target, latest in ms); target -> job id -> (queue, message) while held
        self.holds: dict[str, tuple[str, int]] = {}
        self.held: dict[str, dict[str, tuple[str, dict]]] = {}
        self.trickle: dict[str, int] = {}  # target -> when one of its held jobs goes next

    def _state(self, target: str) -> str:
        """As park_claim.lua reads it: 'closed', 'paused', 'open' or 'half_open'."""
        if self._breakers is None:
            return "closed"
        if self._breakers._get(target).paused_until > self._clock():
            return "paused"
        return self._breakers.status(target).state.name.lower()

    def _blocked(self, target: str) -> bool:
        return self._state(target) != "closed"

    def park(self, job: Job, wait_s: float, hold: Hold | None = None) -> None:
        now = _ms(self._clock())
        due = now + _ms(max(wait_s, 0.0))
        previous = self.holds.pop(job.job_id, None)
        if previous is not None:
            self.held.get(previous[0], {}).pop(job.job_id, None)
        if hold is not None:
            self.holds[job.job_id] = (hold.target, now + max(_ms(hold.latest_s), _ms(max(wait_s, 0.0))))
        self.parked[queue_for(job.priority)][job.job_id] = (due, next(self._seq), job.to_message())

    def _release(self, now: int) -> None:
        for target, jobs in list(self.held.items()):
            state = self._state(target)
            by_latest = sorted(jobs, key=lambda job_id: (self.holds[job_id][1], job_id))
            going = [j for j in by_latest if state == "closed" or self.holds[j][1] <= now]
            if not going and (state == "half_open" or now >= self.trickle.get(target, 0)):
                going = by_latest[:1]
                if state != "half_open":
                    self.trickle[target] = now + self._trickle_ms
            for job_id in going:
                queue, message = jobs.pop(job_id)
                self.parked[queue][job_id] = (now, next(self._seq), message)
            if not jobs:
                del self.held[target]
                self.trickle.pop(target, None)

    def _held_now(self, job_id: str, now: int, passed: set[str]) -> str | None:
        """The target a due job is held behind in this claim, if any (the first goes through)."""
        hold = self.holds.get(job_id)
        if hold is None or hold[1] <= now or not self._blocked(hold[0]):
            return None
        if hold[0] not in passed:
            passed.add(hold[0])
            return None
        return hold[0]

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[Claim]:
        now = _ms(self._clock())
        lease = now + _ms(lease_s)
        claims: list[Claim] = []
        expired = sorted((end, job_id) for job_id, (end, _) in self.moving.items() if end <= now)
        for _, job_id in expired[:limit]:
            message = self.moving[job_id][1]
            self.moving[job_id] = (lease, message)
            claims.append(Claim(job_id, copy.deepcopy(message), lease))
        self._release(now)
        passed: set[str] = set()
        for queue in QUEUES:
            entries = self.parked[queue]
            due = sorted((d, seq, job_id) for job_id, (d, seq, _) in entries.items() if d <= now)
            for _, _, job_id in due:
                if len(claims) >= limit:
                    break
                _, _, message = entries.pop(job_id)
                target = self._held_now(job_id, now, passed)
                if target is not None:
                    self.held.setdefault(target, {})[job_id] = (queue, message)
                    self.trickle.setdefault(target, now + self._trickle_ms)
                    continue
                self.holds.pop(job_id, None)
                self.moving[job_id] = (lease, message)
                claims.append(Claim(job_id, copy.deepcopy(message), lease))
        return claims

    def confirm(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            entry = self.moving.get(claim.job_id)
            if entry is not None and entry[0] == claim.lease:
                del self.moving[claim.job_id]

    def parked_ids(self) -> set[str]:
        held = {job_id for jobs in self.held.values() for job_id in jobs}
        return {job_id for entries in self.parked.values() for job_id in entries} | set(self.moving) | held

    def count(self) -> int:
        held = sum(len(jobs) for jobs in self.held.values())
        return sum(len(entries) for entries in self.parked.values()) + len(self.moving) + held
