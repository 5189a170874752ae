"""The fleet-wide circuit breaker, rate limiter and pauses on Redis: every transition is one Lua
script run on Redis's own clock, so the whole fleet shares one breaker a target."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.client import (
    RedisStore,
    StoreScript,
    eval_script,
    run_pipeline,
    script_text,
    text,
)
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.adapters.redis.tracking import RedisJobTracker
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
from publishing.delivery import Start
from publishing.ordering import Gate, GateDecision, GateEntry

_STATES = {"closed": BreakerState.CLOSED, "open": BreakerState.OPEN, "half_open": BreakerState.HALF_OPEN}
# A breaker's keys expire this long after their last use: a target taken out of the
# configuration leaves nothing in Redis (its state would be stale when it came back anyway).
KEY_TTL_S = 7 * 86_400

log = logging.getLogger(__name__)


class RedisBreakerStore(RedisStore):
    _acquire = StoreScript("breaker_acquire")
    _success = StoreScript("breaker_success")
    _failure = StoreScript("breaker_failure")
    _pause = StoreScript("breaker_pause")

    def keys(self, target: str) -> list[str]:
        base = self._target_key("breaker", target)
        return [base, f"{base}:probes", f"{base}:pause", f"{base}:rate"]

    def acquire(
        self, target: str, config: BreakerConfig, lease_s: float, rate: RateLimit | None = None
    ) -> BreakerDecision:
        reply = self._acquire(keys=self.keys(target), args=self.acquire_args(config, lease_s, rate))
        return self.decision(target, config, reply)

    def acquire_args(self, config: BreakerConfig, lease_s: float, rate: RateLimit | None) -> list[Any]:
        return [
            int(config.open_timeout_s * 1000),
            config.half_open_probes,
            max(1, int(lease_s * 1000)),
            uuid.uuid4().hex,
            int(HALF_OPEN_RETRY_S * 1000),
            int(rate.interval_s * 1000) if rate else 0,
            int(rate.tolerance_s * 1000) if rate else 0,
            KEY_TTL_S * 1000,
        ]

    def decision(self, target: str, config: BreakerConfig, reply: Sequence[Any]) -> BreakerDecision:
        """What breaker_acquire.lua answered, as the domain's decision."""
        admitted, detail, wait_ms, state, down_for_ms, half_opened = reply
        detail = text(detail)
        if int(half_opened):
            # The one call, fleet-wide, that moved the breaker: one line a transition.
            log.info(
                "breaker of target %s half-open: %d probe(s) may try it",
                target,
                config.half_open_probes,
                extra={"target": target, "breaker": "half_open"},
            )
        if admitted:
            if detail == "clean":
                return Admit(clean=True)
            return Admit(detail or None)
        return Defer(
            max(0.0, int(wait_ms) / 1000), _STATES[text(state)], DeferReason(detail), int(down_for_ms) / 1000
        )

    def pause(self, target: str, seconds: float) -> None:
        started, left_ms = self._pause(keys=[self.keys(target)[2]], args=[max(1, int(seconds * 1000))])
        if int(started):
            log.warning(
                "target %s paused for %.0f s fleet-wide (it answered 429 with Retry-After)",
                target,
                int(left_ms) / 1000,
                extra={"target": target, "breaker": "paused"},
            )

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        result = self._success(
            keys=self.keys(target), args=[config.success_threshold, probe_id or "", KEY_TTL_S * 1000]
        )
        return Transition.RECOVERED if int(result) == 2 else Transition.NONE

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        result = self._failure(
            keys=self.keys(target), args=[config.failure_threshold, probe_id or "", KEY_TTL_S * 1000]
        )
        return Transition.TRIPPED if int(result) == 1 else Transition.NONE

    def release(self, target: str, probe_id: str | None) -> None:
        if probe_id:
            self._client.zrem(self.keys(target)[1], probe_id)

    def status(self, target: str) -> BreakerStatus:
        raw = {text(k): text(v) for k, v in self._client.hgetall(self.keys(target)[0]).items()}
        opened = raw.get("opened_at_ms")
        return BreakerStatus(
            target=target,
            state=_STATES[raw.get("state", "closed")],
            consecutive_failures=int(raw.get("failures", 0)),
            probe_successes=int(raw.get("successes", 0)),
            opened_at_s=int(opened) / 1000 if opened else None,
            trips=int(raw.get("trips", 0)),
            recoveries=int(raw.get("recoveries", 0)),
        )

    def reset(self, target: str) -> None:
        key, probes, pause, _ = self.keys(target)
        pipe = self._client.pipeline()
        pipe.hset(key, mapping={"state": "closed", "failures": 0, "successes": 0})
        pipe.hdel(key, "opened_at_ms", "down_since_ms")
        pipe.delete(probes, pause)
        pipe.pexpire(key, KEY_TTL_S * 1000)
        pipe.execute()


def gated_admission_text() -> str:
    """order_admit.lua with the gate's and the admission's scripts before it as functions."""
    return "\n".join(
        [
            "local function gate(KEYS, ARGV)",
            script_text("order_gate"),
            "end",
            "local function acquire(KEYS, ARGV)",
            script_text("breaker_acquire"),
            "end",
            script_text("order_admit"),
        ]
    )


class RedisGatedAdmission:
    """The firing-before-resolved gate and the breaker's admission in one round trip
    (``publishing.delivery.GatedAdmission``): what ``RedisOrderGate.enter`` and then, for an
    attempt the gate lets go, ``RedisBreakerStore.acquire`` would decide; with ``tracker``,
    the attempt's start mark rides in the same round trip (a pipeline: its keys are the
    job's, in another cluster slot than the target's)."""

    def __init__(
        self,
        client: redis.Redis,
        gate: RedisOrderGate,
        breakers: RedisBreakerStore,
        tracker: RedisJobTracker | None = None,
    ) -> None:
        self._client = client
        self._gate = gate
        self._breakers = breakers
        self._tracker = tracker
        self._script = client.register_script(gated_admission_text())

    def enter_and_acquire(
        self, entry: GateEntry, config: BreakerConfig, rate: RateLimit | None = None
    ) -> tuple[GateDecision, BreakerDecision | None]:
        keys, args = self._call(entry, config, rate)
        return self._decide(entry, config, self._script(keys=keys, args=args))

    def start_and_admit(
        self, start: Start, entry: GateEntry, config: BreakerConfig, rate: RateLimit | None = None
    ) -> tuple[int, GateDecision, BreakerDecision | None]:
        tracker = self._tracker
        if tracker is None:
            raise ValueError("start_and_admit needs the job tracker")
        keys, args = self._call(entry, config, rate)

        def build(pipe: Pipeline) -> None:
            tracker.queue_start(pipe, start.job_id, start.attempt_key, start.at)
            eval_script(self._script, keys, args, pipe)

        starts, reply = run_pipeline(self._client, build, [*tracker.start_scripts, self._script])
        return int(starts), *self._decide(entry, config, reply)

    def _call(
        self, entry: GateEntry, config: BreakerConfig, rate: RateLimit | None
    ) -> tuple[list[str], list[Any]]:
        keys = [self._gate.entry_key(entry), *self._breakers.keys(entry.target)]
        args = [*self._gate.enter_args(entry), *self._breakers.acquire_args(config, entry.lease_s, rate)]
        return keys, args

    def _decide(
        self, entry: GateEntry, config: BreakerConfig, reply: Sequence[Any]
    ) -> tuple[GateDecision, BreakerDecision | None]:
        gate = self._gate.decision(reply)
        if gate.gate is not Gate.GO:
            return gate, None
        return gate, self._breakers.decision(entry.target, config, reply[2:])
