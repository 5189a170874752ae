"""The per-target circuit breaker (SPEC §6): its configuration, states, decisions and port.

The state machine runs where the state lives: in one Lua script against Redis for the fleet
(``workers.redis_store``) and in ``publishing.testing.InMemoryBreakerStore`` for unit tests;
both follow the transitions written here.

closed --failure_threshold consecutive failures--> open
open --open_timeout_s elapsed--> half_open (admits half_open_probes leased probes at a time)
half_open --success_threshold probe successes--> closed
half_open --a failed probe--> open
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol


class BreakerState(IntEnum):
    """Values are those of the ``circuit_breaker_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    open_timeout_s: float = 30.0
    half_open_probes: int = 1
    success_threshold: int = 2
    max_deferral_s: float = 3600.0
    # A probe slot is leased so that a worker that dies mid-probe cannot wedge the breaker;
    # the lease outlives the longest attempt (the HTTP timeout) by this margin.
    probe_lease_margin_s: float = 5.0


class DeferReason(StrEnum):
    BREAKER_OPEN = "open"
    PROBE_BUSY = "half_open"
    RATE_LIMITED = "rate_limited"
    PAUSED = "paused"
    ORDERING = "ordering"  # a resolve waits for a firing attempt on the wire


@dataclass(frozen=True)
class RateLimit:
    """A fleet-wide limit on attempts to one target: at most one every ``interval_s``, with
    ``burst`` attempts allowed back to back (GCRA)."""

    interval_s: float
    burst: int = 1

    @property
    def tolerance_s(self) -> float:
        return (self.burst - 1) * self.interval_s

    def describe(self) -> dict[str, float]:
        return {"per_s": round(1 / self.interval_s, 6), "burst": self.burst}


@dataclass(frozen=True)
class Admit:
    """Go ahead. ``probe_id`` is set when this attempt holds a half-open probe slot; ``clean``
    when the breaker is closed with no failure counted, so a success has nothing to reset."""

    probe_id: str | None = None
    clean: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Defer:
    """The attempt may not go now (open breaker, busy probe slot, rate limit or a pause the
    target asked for); ask again in ``wait_s``."""

    wait_s: float
    state: BreakerState
    reason: DeferReason = DeferReason.BREAKER_OPEN
    # How long the target has been down (open or half-open since it first tripped).
    down_for_s: float = 0.0


BreakerDecision = Admit | Defer


class Transition(IntEnum):
    NONE = 0
    TRIPPED = 1
    RECOVERED = 2


@dataclass(frozen=True)
class BreakerStatus:
    target: str
    state: BreakerState
    consecutive_failures: int
    probe_successes: int
    opened_at_s: float | None
    trips: int
    recoveries: int

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "state": self.state.label,
            "consecutive_failures": self.consecutive_failures,
            "probe_successes": self.probe_successes,
            "opened_at": self.opened_at_s,
            "trips": self.trips,
            "recoveries": self.recoveries,
        }


class BreakerStore(Protocol):
    def acquire(
        self, target: str, config: BreakerConfig, lease_s: float, rate: RateLimit | None = None
    ) -> BreakerDecision:
        """Admission of one attempt: a pause, then the breaker, then the rate limit, decided at
        once so that a deferred attempt takes neither a probe slot nor a token."""
        ...

    def pause(self, target: str, seconds: float) -> None:
        """Admit nothing to ``target`` for ``seconds`` (it answered 429 with Retry-After)."""
        ...

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition: ...

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition: ...

    def release(self, target: str, probe_id: str | None) -> None:
        """Give a probe slot back without a verdict (the attempt ended in a permanent error)."""
        ...

    def status(self, target: str) -> BreakerStatus: ...

    def reset(self, target: str) -> None: ...
