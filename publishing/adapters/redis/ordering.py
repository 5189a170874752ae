"""Firing-before-resolved ordering on Redis (``publishing.ordering``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.client import eval_script, load_script, run_pipeline, text
from publishing.ordering import Gate, GateDecision, GateNote


class RedisOrderGate:
    """Firing-before-resolved ordering (``publishing.ordering``), one hash an alert and target."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._gate = load_script(client, "order_gate")
        self._note = load_script(client, "order_note")
        self._leave = load_script(client, "order_leave")

    def key(self, target: str, fingerprint: str) -> str:
        return f"{self._prefix}:order:{{{target}}}:{fingerprint}"

    def note(self, notes: Sequence[GateNote]) -> None:
        def build(pipe: Pipeline) -> None:
            for n in notes:
                args = [1 if n.firing else 0, n.job_id, self._ttl_ms]
                eval_script(self._note, [self.key(n.target, n.fingerprint)], args, pipe)

        if notes:
            run_pipeline(self._client, build, [self._note])

    def enter(
        self,
        target: str,
        fingerprint: str,
        job_id: str,
        firing: bool,
        submitted_at: float,
        lease_s: float,
        require_fired: bool = False,
    ) -> GateDecision:
        gate, wait_ms = self._gate(
            keys=[self.key(target, fingerprint)],
            args=self.enter_args(job_id, firing, submitted_at, lease_s, require_fired),
        )
        return GateDecision(Gate(text(gate)), max(0.0, int(wait_ms) / 1000))

    @staticmethod
    def enter_args(
        job_id: str, firing: bool, submitted_at: float, lease_s: float, require_fired: bool
    ) -> list[Any]:
        return [
            1 if firing else 0,
            job_id,
            repr(submitted_at),
            max(1, int(lease_s * 1000)),
            1 if require_fired else 0,
        ]

    def leave(self, target: str, fingerprint: str, job_id: str, delivered: bool = False) -> None:
        self._leave(keys=[self.key(target, fingerprint)], args=[job_id, 1 if delivered else 0, self._ttl_ms])
