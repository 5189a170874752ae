"""The order gate and the breaker's admission in one Redis round trip decide exactly what the
two calls decide one after the other, and an attempt the gate stops takes nothing from the
breaker (no probe slot, no rate token)."""

from __future__ import annotations

import pytest
import redis

from publishing.adapters.redis.breaker import RedisBreakerStore, RedisGatedAdmission
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.breaker import Admit, BreakerConfig, Defer, DeferReason, RateLimit
from publishing.ordering import Gate, GateEntry, GateNote

pytestmark = pytest.mark.redis

CONFIG = BreakerConfig(failure_threshold=2, open_timeout_s=30, half_open_probes=1, success_threshold=1)
SLOW_RATE = RateLimit(interval_s=60)


class Parts:
    def __init__(self, client: redis.Redis) -> None:
        self.gate = RedisOrderGate(client, prefix="t", ttl_s=60)
        self.breakers = RedisBreakerStore(client, "t")
        self.admission = RedisGatedAdmission(client, self.gate, self.breakers)

    def admit(self, job_id: str, firing: bool = True, rate: RateLimit | None = None):  # type: ignore[no-untyped-def]
        return self.admission.enter_and_acquire(GateEntry("pd", "fp", job_id, firing, 0.0, 5.0), CONFIG, rate)


@pytest.fixture
def parts(fresh_redis: str) -> Parts:
    return Parts(redis.Redis.from_url(fresh_redis))


def test_a_firing_job_the_gate_lets_go_is_admitted_by_a_closed_breaker(parts: Parts) -> None:
    parts.gate.note([GateNote("pd", "fp", "j1", True)])
    gate, decision = parts.admit("j1")
    assert gate.gate is Gate.GO
    assert decision == Admit(clean=True)


def test_a_firing_job_superseded_by_a_resolve_takes_no_rate_token(parts: Parts) -> None:
    parts.gate.note([GateNote("pd", "fp", "j1", True)])
    parts.gate.note([GateNote("pd", "fp", "r1", False)])
    gate, decision = parts.admit("j1", rate=SLOW_RATE)
    assert gate.gate is Gate.SUPERSEDED and decision is None
    # The one token a minute is still there for the next attempt.
    assert isinstance(parts.breakers.acquire("pd", CONFIG, 5.0, SLOW_RATE), Admit)


def test_a_resolve_waits_for_the_firing_attempt_in_flight_without_asking_the_breaker(parts: Parts) -> None:
    parts.gate.note([GateNote("pd", "fp", "j1", True)])
    assert parts.admit("j1")[0].gate is Gate.GO
    gate, decision = parts.admit("r1", firing=False, rate=SLOW_RATE)
    assert gate.gate is Gate.WAIT and gate.wait_s > 0 and decision is None
    assert isinstance(parts.breakers.acquire("pd", CONFIG, 5.0, SLOW_RATE), Admit)


def test_an_open_breaker_defers_a_job_the_gate_lets_go(parts: Parts) -> None:
    for _ in range(CONFIG.failure_threshold):
        parts.breakers.record_failure("pd", CONFIG, None)
    gate, decision = parts.admit("j1")
    assert gate.gate is Gate.GO
    assert isinstance(decision, Defer) and decision.reason is DeferReason.BREAKER_OPEN
    assert decision.wait_s > 20


def test_a_rate_limited_target_defers_the_second_job_as_two_calls_would(parts: Parts) -> None:
    assert isinstance(parts.admit("j1", rate=SLOW_RATE)[1], Admit)
    gate, decision = parts.admit("j2", rate=SLOW_RATE)
    assert gate.gate is Gate.GO
    assert isinstance(decision, Defer) and decision.reason is DeferReason.RATE_LIMITED
