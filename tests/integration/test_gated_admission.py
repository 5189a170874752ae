"""The order gate and the breaker's admission in one Redis round trip decide exactly what the
two calls decide one after the other, and an attempt the gate stops takes nothing from the
breaker (no probe slot, no rate token). The attempt's start mark rides in that round trip,
and an attempt started too often gives back what its admission took."""

from __future__ import annotations

import time

import pytest
import redis

from publishing.adapters.redis.breaker import RedisBreakerStore, RedisGatedAdmission
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.alert import EnrichedAlert, parse_alertmanager
from publishing.breaker import Admit, BreakerConfig, Defer, DeferReason, RateLimit
from publishing.delivery import Delivered, DeliveryService, Receipt, Redelivered, Start
from publishing.job import Job
from publishing.ordering import Gate, GateEntry, GateExit, GateNote
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import Target, TargetRegistry

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


# The attempt's start mark rides in the admission's round trip (docs/design.md (Job states)).


class Service:
    """The delivery service over the Redis gate, breaker and tracker, publishing to a list."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.tracker = RedisJobTracker(client, prefix="t", capacity=1000, ttl_s=60)
        self.gate = RedisOrderGate(client, prefix="t", ttl_s=60)
        self.breakers = RedisBreakerStore(client, "t")
        self.sent: list[str] = []
        registry = TargetRegistry(
            [parse_target({"name": "pd", "type": "webhook", "url": "http://h.example/"})]
        )
        self.delivery = DeliveryService(
            registry,
            self,
            self.breakers,
            order_gate=self.gate,
            admission=RedisGatedAdmission(client, self.gate, self.breakers, self.tracker),
            starts=self.tracker,
            retry_policy=lambda _: RetryPolicy(),
            breaker_config=CONFIG,
            default_timeout_s=5,
            clock=time.time,
            rng=lambda: 0.0,
        )

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        self.sent.append(job_id)
        return Receipt(202, 0.01)

    def attempt(self, job: Job) -> tuple[object, Start, list[GateExit]]:
        start, exits = Start(job.job_id, job.attempt_key, time.time(), max_starts=3), []
        return self.delivery.attempt(job, exits, start), start, exits


def a_job(job_id: str, status: str = "firing", name: str = "A") -> Job:
    raw = {"status": status, "labels": {"alertname": name}, "startsAt": "2026-01-01T00:00:00Z"}
    (alert,) = parse_alertmanager({"alerts": [raw]})
    return Job(job_id, "pd", Priority.HIGH, alert, time.time())


@pytest.fixture
def service(fresh_redis: str) -> Service:
    return Service(redis.Redis.from_url(fresh_redis))


def test_the_start_mark_and_the_admission_are_one_round_trip_and_count_every_start(
    service: Service,
) -> None:
    sent: list[list[bytes]] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sent.append(command if isinstance(command, list) else [command])
        return original(self, command, check_health)

    service.attempt(a_job("warm"))  # connects and loads the scripts: not counted
    job = a_job("j1")
    redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        outcomes = [service.attempt(job) for _ in range(2)]
    finally:
        redis.connection.Connection.send_packed_command = original  # type: ignore[method-assign]
    assert [o for o, _, _ in outcomes] == [Delivered(202, 0.01), Delivered(202, 0.01)]
    assert [s.count for _, s, _ in outcomes] == [1, 2]
    # Each attempt wrote to Redis once before its send (the settlement is the caller's).
    assert len(sent) == 2, sent


def test_an_attempt_started_past_its_limit_sends_nothing_and_gives_back_its_probe_and_lease(
    service: Service,
) -> None:
    firing = a_job("j1")
    for _ in range(3):
        service.tracker.mark_started(firing.job_id, firing.attempt_key, time.time())
    # The breaker half-open with one probe slot, which the over-started attempt is admitted to.
    for _ in range(CONFIG.failure_threshold):
        service.breakers.record_failure("pd", CONFIG, None)
    service.client.hset("t:breaker:{pd}", "opened_at_ms", 0)

    outcome, start, exits = service.attempt(firing)
    assert outcome == Redelivered(4) and start.count == 4
    assert service.sent == []
    # The firing's lease of the gate is handed back, undelivered, with the settlement.
    assert exits == [GateExit("pd", firing.alert.alert.fingerprint, "j1", False)]
    service.gate.leave_all(exits)
    # The probe slot is free again: the next job takes it and is sent.
    other, _, _ = service.attempt(a_job("j2", name="B"))
    assert isinstance(other, Delivered) and service.sent == ["j2"]
    # The resolve of the over-started firing does not wait on its given-back lease.
    resolve, _, _ = service.attempt(a_job("r1", status="resolved"))
    assert isinstance(resolve, Delivered)
