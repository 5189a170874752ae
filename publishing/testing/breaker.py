"""The breaker state machine of ``publishing.breaker`` in one process's memory."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from publishing.breaker import (
    HALF_OPEN_RETRY_S,
    Admit,
    BreakerConfig,
    BreakerDecision,
    BreakerState,
    BreakerStatus,
    Defer,
    DeferReason,
    RateLimit,
    Transition,
)
from publishing.testing.clock import FrozenClock


@dataclass
class _Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    successes: int = 0
    opened_at: float | None = None
    probes: dict[str, float] = field(default_factory=dict)  # probe id -> lease expiry
    trips: int = 0
    recoveries: int = 0
    paused_until: float = 0.0
    down_since: float | None = None
    # The rate limiter's theoretical arrival time, in whole milliseconds as the Redis script
    # counts: float seconds drift, and a burst would lose its last attempt to rounding.
    tat_ms: int = 0


class InMemoryBreakerStore:
    """The breaker state machine of ``publishing.breaker`` in one process's memory, decision for
    decision as the Redis scripts take it (the contract tests run both)."""

    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _get(self, target: str) -> _Breaker:
        return self._breakers.setdefault(target, _Breaker())

    def _open(self, b: _Breaker, now: float) -> None:
        b.state, b.opened_at, b.successes, b.failures, b.probes = BreakerState.OPEN, now, 0, 0, {}
        b.down_since = now if b.down_since is None else b.down_since
        b.trips += 1

    def acquire(
        self, target: str, config: BreakerConfig, lease_s: float, rate: RateLimit | None = None
    ) -> BreakerDecision:
        with self._lock:
            b, now = self._get(target), self._clock()
            down_for = now - (b.down_since if b.down_since is not None else now)
            if b.paused_until > now:
                return Defer(b.paused_until - now, b.state, DeferReason.PAUSED, down_for)
            if b.state is BreakerState.OPEN:
                assert b.opened_at is not None
                reopen_at = b.opened_at + config.open_timeout_s
                if now < reopen_at:
                    return Defer(reopen_at - now, BreakerState.OPEN, DeferReason.BREAKER_OPEN, down_for)
                b.state, b.successes, b.probes = BreakerState.HALF_OPEN, 0, {}
            if b.state is BreakerState.HALF_OPEN:
                b.probes = {p: exp for p, exp in b.probes.items() if exp > now}
                if len(b.probes) >= config.half_open_probes:
                    wait_s = min(HALF_OPEN_RETRY_S, min(b.probes.values(), default=now) - now)
                    return Defer(wait_s, BreakerState.HALF_OPEN, DeferReason.PROBE_BUSY, down_for)
            if rate is not None:
                now_ms = round(now * 1000)
                tat_ms = max(b.tat_ms, now_ms)
                early_ms = tat_ms - now_ms - int(rate.tolerance_s * 1000)
                if early_ms > 0:
                    return Defer(early_ms / 1000, b.state, DeferReason.RATE_LIMITED, down_for)
                b.tat_ms = tat_ms + int(rate.interval_s * 1000)
            if b.state is BreakerState.CLOSED:
                return Admit(clean=b.failures == 0)
            probe_id = f"probe-{next(self._ids)}"
            b.probes[probe_id] = now + lease_s
            return Admit(probe_id)

    def pause(self, target: str, seconds: float) -> None:
        with self._lock:
            b = self._get(target)
            # Redis keeps a pause for at least a millisecond.
            b.paused_until = max(b.paused_until, self._clock() + max(seconds, 0.001))

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
                    b.down_since, b.probes = None, {}
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
            # The rate limiter's schedule outlives a reset, as the Redis rate key does.
            self._breakers[target] = _Breaker(trips=old.trips, recoveries=old.recoveries, tat_ms=old.tat_ms)
