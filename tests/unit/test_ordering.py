"""Firing before resolved, decided by the delivery service over in-memory fakes."""

from __future__ import annotations

from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerConfig, DeferReason
from publishing.delivery import Deferred, Delivered, DeliveryService, Superseded
from publishing.job import Job
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryBreakerStore, InMemoryOrderGate


class Receipt:
    status_code = 200
    duration_s = 0.01


class Publisher:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, target, enriched, job_id):  # type: ignore[no-untyped-def]
        self.sent.append(job_id)
        return Receipt()


def job(job_id: str, status: str, submitted_at: float) -> Job:
    raw = {"status": status, "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}
    (alert,) = parse_alertmanager({"alerts": [raw]})
    return Job(job_id, "hook", Priority.MEDIUM, alert, submitted_at)


def service(clock: FrozenClock, gate: InMemoryOrderGate, publisher: Publisher) -> DeliveryService:
    registry = TargetRegistry([parse_target({"name": "hook", "type": "webhook", "url": "http://h.example/"})])
    return DeliveryService(
        registry,
        publisher,
        InMemoryBreakerStore(clock),
        order_gate=gate,
        retry_policy=lambda _: RetryPolicy(),
        breaker_config=BreakerConfig(),
        default_timeout_s=5,
        clock=clock,
        rng=lambda: 0.0,
    )


def test_a_firing_submitted_before_a_resolve_is_superseded_and_not_sent() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    gate.note_resolved("hook", job("r", "resolved", 2.0).alert.alert.fingerprint, 2.0)
    assert service(clock, gate, publisher).attempt(job("f", "firing", 1.0)) == Superseded()
    assert publisher.sent == []


def test_a_firing_submitted_after_the_resolve_is_a_new_incident_and_is_sent() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    gate.note_resolved("hook", job("r", "resolved", 2.0).alert.alert.fingerprint, 2.0)
    assert isinstance(service(clock, gate, publisher).attempt(job("f", "firing", 3.0)), Delivered)
    assert publisher.sent == ["f"]


def test_a_resolve_waits_while_a_firing_attempt_is_on_the_wire() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    firing = job("f", "firing", 1.0)
    gate.enter("hook", firing.alert.alert.fingerprint, "f", True, 1.0, lease_s=10)
    outcome = service(clock, gate, publisher).attempt(job("r", "resolved", 2.0))
    assert isinstance(outcome, Deferred)
    assert outcome.reason is DeferReason.ORDERING
    gate.leave("hook", firing.alert.alert.fingerprint, "f")
    assert isinstance(service(clock, gate, publisher).attempt(job("r", "resolved", 2.0)), Delivered)
