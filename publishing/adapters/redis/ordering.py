"""Firing-before-resolved ordering on Redis (``publishing.ordering``)."""

from __future__ import annotations

import redis

from publishing.adapters.redis.client import load_script, text
from publishing.ordering import Gate, GateDecision


class RedisOrderGate:
    """Firing-before-resolved ordering (``publishing.ordering``), one hash an alert and target."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._gate = load_script(client, "order_gate")
        self._note = load_script(client, "order_note_resolved")
        self._leave = load_script(client, "order_leave")

    def _key(self, target: str, fingerprint: str) -> str:
        return f"{self._prefix}:order:{{{target}}}:{fingerprint}"

    def note_resolved(self, target: str, fingerprint: str, submitted_at: float) -> None:
        self._note(keys=[self._key(target, fingerprint)], args=[repr(submitted_at), self._ttl_ms])

    def enter(
        self, target: str, fingerprint: str, job_id: str, firing: bool, submitted_at: float, lease_s: float
    ) -> GateDecision:
        gate, wait_ms = self._gate(
            keys=[self._key(target, fingerprint)],
            args=[1 if firing else 0, job_id, repr(submitted_at), max(1, int(lease_s * 1000))],
        )
        return GateDecision(Gate(text(gate)), max(0.0, int(wait_ms) / 1000))

    def leave(self, target: str, fingerprint: str, job_id: str) -> None:
        self._leave(keys=[self._key(target, fingerprint)], args=[job_id])
