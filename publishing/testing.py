"""In-memory implementations of every port, for unit tests and local experiments.

They follow the same contracts as the Redis and SQL implementations, which the
integration tests hold to the same expectations.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from publishing.breaker import (
    Admit,
    BreakerConfig,
    BreakerDecision,
    BreakerState,
    BreakerStatus,
    Defer,
    Transition,
)
from publishing.tracking import JobQuery, JobSnapshot, JobState


class FrozenClock:
    """A clock that moves only when told: ``clock()`` is now in seconds."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    successes: int = 0
    opened_at: float | None = None
    probes: dict[str, float] = field(default_factory=dict)  # probe id -> lease expiry
    trips: int = 0
    recoveries: int = 0


class InMemoryBreakerStore:
    """The breaker state machine of ``publishing.breaker`` in one process's memory."""

    # How long a job waits before asking again while every half-open probe slot is taken.
    HALF_OPEN_RETRY_S = 1.0

    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _get(self, target: str) -> _Breaker:
        return self._breakers.setdefault(target, _Breaker())

    def _open(self, b: _Breaker, now: float) -> None:
        b.state, b.opened_at, b.successes, b.probes = BreakerState.OPEN, now, 0, {}
        b.trips += 1

    def acquire(self, target: str, config: BreakerConfig, lease_s: float) -> BreakerDecision:
        with self._lock:
            b, now = self._get(target), self._clock()
            if b.state is BreakerState.CLOSED:
                return Admit()
            if b.state is BreakerState.OPEN:
                assert b.opened_at is not None
                reopen_at = b.opened_at + config.open_timeout_s
                if now < reopen_at:
                    return Defer(reopen_at - now, BreakerState.OPEN)
                b.state, b.successes, b.probes = BreakerState.HALF_OPEN, 0, {}
            b.probes = {p: exp for p, exp in b.probes.items() if exp > now}
            if len(b.probes) >= config.half_open_probes:
                return Defer(self.HALF_OPEN_RETRY_S, BreakerState.HALF_OPEN)
            probe_id = f"probe-{next(self._ids)}"
            b.probes[probe_id] = now + lease_s
            return Admit(probe_id)

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        with self._lock:
            b = self._get(target)
            if b.state is BreakerState.CLOSED:
                b.failures = 0
            elif b.state is BreakerState.HALF_OPEN and probe_id in b.probes:
                del b.probes[probe_id]
                b.successes += 1
                if b.successes >= config.success_threshold:
                    b.state, b.failures, b.successes, b.opened_at = BreakerState.CLOSED, 0, 0, None
                    b.recoveries += 1
                    return Transition.RECOVERED
            return Transition.NONE

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        with self._lock:
            b, now = self._get(target), self._clock()
            if b.state is BreakerState.CLOSED:
                b.failures += 1
                if b.failures >= config.failure_threshold:
                    self._open(b, now)
                    return Transition.TRIPPED
            elif b.state is BreakerState.HALF_OPEN and probe_id in b.probes:
                self._open(b, now)
                return Transition.TRIPPED
            return Transition.NONE

    def release(self, target: str, probe_id: str | None) -> None:
        with self._lock:
            if probe_id:
                self._get(target).probes.pop(probe_id, None)

    def status(self, target: str) -> BreakerStatus:
        with self._lock:
            b = self._get(target)
            return BreakerStatus(target, b.state, b.failures, b.successes, b.opened_at, b.trips, b.recoveries)

    def reset(self, target: str) -> None:
        with self._lock:
            old = self._get(target)
            self._breakers[target] = _Breaker(trips=old.trips, recoveries=old.recoveries)


class InMemoryJobTracker:
    def __init__(self, capacity: int = 10_000) -> None:
        self._jobs: OrderedDict[str, JobSnapshot] = OrderedDict()
        self._capacity = capacity

    def record(self, snapshot: JobSnapshot) -> None:
        self._jobs[snapshot.id] = snapshot
        self._jobs.move_to_end(snapshot.id)
        while len(self._jobs) > self._capacity:
            self._jobs.popitem(last=False)

    def update(self, job_id: str, **fields: Any) -> None:
        if job_id in self._jobs:
            self._jobs[job_id] = replace(self._jobs[job_id], **fields)

    def get(self, job_id: str) -> JobSnapshot | None:
        return self._jobs.get(job_id)

    def list(self, query: JobQuery) -> tuple[list[JobSnapshot], int]:
        matches = [
            s
            for s in reversed(self._jobs.values())
            if (query.state is None or s.state is query.state)
            and (query.priority is None or s.priority is query.priority)
            and (query.target is None or s.target == query.target)
        ]
        return matches[: query.limit], len(matches)

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in JobState}
        for s in self._jobs.values():
            counts[s.state.value] += 1
        return counts


class InMemoryDeduplicator:
    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._claims: dict[str, tuple[str, float]] = {}

    def claim(self, key: str, job_id: str, window_s: float) -> str | None:
        now = self._clock()
        held = self._claims.get(key)
        if held and held[1] > now:
            return held[0]
        self._claims[key] = (job_id, now + window_s)
        return None

    def release(self, key: str, job_id: str) -> None:
        if self._claims.get(key, ("",))[0] == job_id:
            del self._claims[key]


class RecordingEnqueuer:
    """Collects the jobs a submission would send to the broker."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def enqueue(self, job: Any) -> None:
        self.sent.append(job)


# --- in-memory dead-letter repository (below) ---
