"""Firing-before-resolved ordering on Redis (``publishing.ordering``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.client import RedisStore, StoreScript, eval_script, run_writes, text
from publishing.ordering import Gate, GateDecision, GateEntry, GateExit, GateNote


class RedisOrderGate(RedisStore):
    """Firing-before-resolved ordering (``publishing.ordering``), one hash an alert and target."""

    _gate = StoreScript("order_gate")
    _note = StoreScript("order_note")
    _leave = StoreScript("order_leave")

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        super().__init__(client, prefix)
        self._ttl_ms = int(ttl_s * 1000)

    def key(self, target: str, fingerprint: str) -> str:
        return f"{self._target_key('order', target)}:{fingerprint}"

    def note(self, notes: Sequence[GateNote]) -> None:
        def build(pipe: Pipeline) -> None:
            for n in notes:
                args = [1 if n.firing else 0, n.job_id, self._ttl_ms]
                eval_script(self._note, [self.key(n.target, n.fingerprint)], args, pipe)

        if notes:
            run_writes(self._client, build, [self._note])

    def enter(self, entry: GateEntry) -> GateDecision:
        return self.decision(self._gate(keys=[self.entry_key(entry)], args=self.enter_args(entry)))

    @staticmethod
    def decision(reply: Sequence[Any]) -> GateDecision:
        """What order_gate.lua answered (a verdict and a wait in milliseconds)."""
        gate, wait_ms = reply[:2]
        return GateDecision(Gate(text(gate)), max(0.0, int(wait_ms) / 1000))

    def entry_key(self, entry: GateEntry) -> str:
        return self.key(entry.target, entry.fingerprint)

    @staticmethod
    def enter_args(entry: GateEntry) -> list[Any]:
        return [
            1 if entry.firing else 0,
            entry.job_id,
            repr(entry.submitted_at),
            max(1, int(entry.lease_s * 1000)),
            1 if entry.require_fired else 0,
        ]

    def leave(
        self, target: str, fingerprint: str, job_id: str, delivered: bool = False, client: Any = None
    ) -> None:
        """``client`` may be a pipeline, to settle an attempt in one round trip."""
        args = [job_id, 1 if delivered else 0, self._ttl_ms]
        eval_script(self._leave, [self.key(target, fingerprint)], args, client)

    def leave_all(self, exits: Sequence[GateExit], client: Any = None) -> None:
        for e in exits:
            self.leave(e.target, e.fingerprint, e.job_id, e.delivered, client)

    @property
    def scripts(self) -> list[Any]:
        """The scripts ``leave`` queues on a pipeline (``run_pipeline`` loads them if needed)."""
        return [self._leave]
