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

from dataclasses import dataclass
from enum import IntEnum
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


@dataclass(frozen=True)
class Admit:
    """Go ahead. ``probe_id`` is set when this attempt holds a half-open probe slot."""

    probe_id: str | None = None


@dataclass(frozen=True)
class Defer:
    """The breaker does not admit the attempt now; ask again in ``wait_s``."""

    wait_s: float
    state: BreakerState


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
    def acquire(self, target: str, config: BreakerConfig, lease_s: float) -> BreakerDecision: ...

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition: ...

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition: ...

    def release(self, target: str, probe_id: str | None) -> None:
        """Give a probe slot back without a verdict (the attempt ended in a permanent error)."""
        ...

    def status(self, target: str) -> BreakerStatus: ...

    def reset(self, target: str) -> None: ...
