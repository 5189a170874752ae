"""Firing-before-resolved ordering in memory; its clock stands for Redis's."""

from __future__ import annotations

from collections.abc import Sequence

from publishing.ordering import Gate, GateDecision, GateEntry, GateNote
from publishing.testing.clock import FrozenClock


class InMemoryOrderGate:
    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._resolved_at: dict[tuple[str, str], float] = {}
        self._firing_at: dict[tuple[str, str, str], float] = {}
        self._inflight: dict[tuple[str, str], tuple[str, float]] = {}
        self._fired: set[tuple[str, str]] = set()

    def note(self, notes: Sequence[GateNote]) -> None:
        now = self._clock()
        for n in notes:
            if n.firing:
                self._firing_at.setdefault((n.target, n.fingerprint, n.job_id), now)
            else:
                key = (n.target, n.fingerprint)
                self._resolved_at[key] = max(self._resolved_at.get(key, float("-inf")), now)

    def enter(self, entry: GateEntry) -> GateDecision:
        key, now = (entry.target, entry.fingerprint), self._clock()
        if entry.firing:
            job = (entry.target, entry.fingerprint, entry.job_id)
            if self._resolved_at.get(key, float("-inf")) >= self._firing_at.get(job, entry.submitted_at):
                self._firing_at.pop(job, None)
                return GateDecision(Gate.SUPERSEDED)
            self._inflight[key] = (entry.job_id, now + entry.lease_s)
            return GateDecision(Gate.GO)
        holder = self._inflight.get(key)
        if holder and holder[1] > now:
            return GateDecision(Gate.WAIT, holder[1] - now)
        if entry.require_fired and key not in self._fired:
            return GateDecision(Gate.SUPERSEDED)
        return GateDecision(Gate.GO)

    def leave(self, target: str, fingerprint: str, job_id: str, delivered: bool = False) -> None:
        if delivered:
            self._fired.add((target, fingerprint))
        if self._inflight.get((target, fingerprint), ("",))[0] == job_id:
            del self._inflight[(target, fingerprint)]
