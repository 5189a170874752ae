"""Per-target health (what an operator asks first when pages stop arriving): attempts and
successes, the last success, the last failure with its redacted error, breaker history,
pauses, rate limiting and fallback use. Recorded by the workers, read by the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class HealthEvent(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DEFERRED = "deferred"
    PAUSED = "paused"
    RATE_LIMITED = "rate_limited"
    FALLBACK = "fallback"
    TRIPPED = "tripped"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class TargetHealth:
    target: str
    counts: dict[str, int] = field(default_factory=dict)
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_error: str | None = None
    breaker_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        attempts = self.counts.get("success", 0) + self.counts.get("failure", 0)
        return self.counts.get("success", 0) / attempts if attempts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "success_rate": self.success_rate,
            "attempts": self.counts.get("success", 0) + self.counts.get("failure", 0),
            "successes": self.counts.get("success", 0),
            "failures": self.counts.get("failure", 0),
            "deferrals": self.counts.get("deferred", 0),
            "pauses": self.counts.get("paused", 0),
            "rate_limited": self.counts.get("rate_limited", 0),
            "fallback_reroutes": self.counts.get("fallback", 0),
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "last_error": self.last_error,
            "breaker_history": self.breaker_history,
        }


class TargetHealthStore(Protocol):
    def record(self, target: str, events: list[HealthEvent], at: float, error: str | None = None) -> None:
        """Count the events of one attempt (an error is already redacted)."""
        ...

    def get(self, target: str) -> TargetHealth: ...
