"""Firing-before-resolved ordering in memory."""

from __future__ import annotations

from publishing.ordering import Gate, GateDecision
from publishing.testing.clock import FrozenClock


class InMemoryOrderGate:
    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._resolved_at: dict[tuple[str, str], float] = {}
        self._inflight: dict[tuple[str, str], tuple[str, float]] = {}

    def note_resolved(self, target: str, fingerprint: str, submitted_at: float) -> None:
        key = (target, fingerprint)
        self._resolved_at[key] = max(self._resolved_at.get(key, float("-inf")), submitted_at)

    def enter(
        self, target: str, fingerprint: str, job_id: str, firing: bool, submitted_at: float, lease_s: float
    ) -> GateDecision:
        key, now = (target, fingerprint), self._clock()
        if firing:
            if self._resolved_at.get(key, float("-inf")) >= submitted_at:
                return GateDecision(Gate.SUPERSEDED)
            self._inflight[key] = (job_id, now + lease_s)
            return GateDecision(Gate.GO)
        holder = self._inflight.get(key)
        if holder and holder[1] > now:
            return GateDecision(Gate.WAIT, holder[1] - now)
        return GateDecision(Gate.GO)

    def leave(self, target: str, fingerprint: str, job_id: str) -> None:
        if self._inflight.get((target, fingerprint), ("",))[0] == job_id:
            del self._inflight[(target, fingerprint)]
