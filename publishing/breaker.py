"""The per-target circuit breaker: its configuration, states, decisions and port.

The state machine runs where the state lives: in Lua scripts against Redis for the fleet
(``publishing.adapters.redis.breaker``) and in ``publishing.testing.InMemoryBreakerStore``
for unit tests; both follow the transitions written here, and one contract suite holds both.

closed --failure_threshold consecutive failures--> open
open --open_timeout_s elapsed--> half_open (admits half_open_probes leased probes at a time)
half_open --success_threshold probe successes--> closed
half_open --a failed probe--> open
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol

# While every half-open probe slot is taken, a deferred attempt asks again after this long, or
# when the first probe's lease runs out if that is sooner: long enough not to hammer the
# store while a probe is on the wire, short enough that a freed slot is soon reused.
HALF_OPEN_RETRY_S = 1.0


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
    target asked for); ask again in ``wait_s``: the rest of the open time or of the pause,
    until the rate limiter admits again, or ``HALF_OPEN_RETRY_S`` (at most until the first
    probe lease runs out) while probes are busy."""

    wait_s: float
    state: BreakerState
    reason: DeferReason = DeferReason.BREAKER_OPEN
    # How long the target has been down (open or half-open since it first tripped), whatever
    # the reason for this deferral; 0 while the breaker is closed.
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
        """Admit nothing to ``target`` for ``seconds`` (it answered 429 with Retry-After). A
        pause only ever lengthens: a shorter one leaves a longer one as it is."""
        ...

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        """Closed: clear the failure count. Half-open: a success of a probe still holding its
        slot counts; ``success_threshold`` of them close the breaker (``RECOVERED``)."""
        ...

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        """Closed: count it; ``failure_threshold`` in a row open the breaker (``TRIPPED``) and
        clear the count. Half-open: a failed probe still holding its slot reopens it for a full
        open time. Open: nothing changes."""
        ...

    def release(self, target: str, probe_id: str | None) -> None:
        """Give a probe slot back without a verdict (the attempt ended in a permanent error)."""
        ...

    def status(self, target: str) -> BreakerStatus:
        """As stored: an open breaker whose open time is over reads open until an ``acquire``
        moves it to half-open."""
        ...

    def reset(self, target: str) -> None:
        """Close the breaker and lift any pause; trips, recoveries and the rate limiter's
        schedule are kept."""
        ...
