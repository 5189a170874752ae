"""Firing before resolved, decided by the delivery service over in-memory fakes."""

from __future__ import annotations

from dataclasses import astuple, replace

import pytest

from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerConfig, DeferReason
from publishing.delivery import Deferred, Delivered, DeliveryService, Superseded
from publishing.errors import PermanentPublishError, TransientPublishError
from publishing.job import Job
from publishing.ordering import GateEntry, GateExit, GateNote
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.submission import Submitter
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import (
    FrozenClock,
    InMemoryBreakerStore,
    InMemoryDeduplicator,
    InMemoryJobTracker,
    InMemoryOrderGate,
    RecordingEnqueuer,
)


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


def note(gate: InMemoryOrderGate, *jobs: Job) -> None:
    gate.note(
        [
            GateNote(j.target, j.alert.alert.fingerprint, j.job_id, j.alert.alert.status.value == "firing")
            for j in jobs
        ]
    )


def test_a_firing_submitted_before_a_resolve_is_superseded_and_not_sent() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    note(gate, job("f", "firing", 1.0))
    clock.advance(1)
    note(gate, job("r", "resolved", 2.0))
    assert service(clock, gate, publisher).attempt(job("f", "firing", 1.0)) == Superseded()
    assert publisher.sent == []


def test_a_firing_submitted_after_the_resolve_is_a_new_incident_and_is_sent() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    note(gate, job("r", "resolved", 2.0))
    clock.advance(1)
    note(gate, job("f", "firing", 3.0))
    assert isinstance(service(clock, gate, publisher).attempt(job("f", "firing", 3.0)), Delivered)
    assert publisher.sent == ["f"]


def api_host(clock_skew_s: float, redis_clock: FrozenClock, gate, tracker, dedup, enqueuer) -> Submitter:  # type: ignore[no-untyped-def]
    registry = TargetRegistry([parse_target({"name": "hook", "type": "webhook", "url": "http://h.example/"})])
    return Submitter(
        registry, tracker, dedup, enqueuer, order_gate=gate, dedup_window_s=300,
        clock=lambda: redis_clock() + clock_skew_s,
    )  # fmt: skip


@pytest.mark.parametrize("resolve_first", [False, True], ids=["firing-then-resolve", "resolve-then-firing"])
def test_skewed_api_host_clocks_do_not_reorder_firing_and_resolved(resolve_first: bool) -> None:
    # Host "ahead" runs an hour fast, host "behind" an hour slow; the gate reads its own clock.
    clock, publisher = FrozenClock(), Publisher()
    gate, tracker, enqueuer = InMemoryOrderGate(clock), InMemoryJobTracker(), RecordingEnqueuer()
    dedup = InMemoryDeduplicator(clock)
    ahead = api_host(+3600, clock, gate, tracker, dedup, enqueuer)
    behind = api_host(-3600, clock, gate, tracker, dedup, enqueuer)
    firing, resolved = (parse_alertmanager({"alerts": [{"status": s, "labels": {"alertname": "A"},
                        "startsAt": "2026-01-01T00:00:00Z"}]})[0] for s in ("firing", "resolved"))  # fmt: skip
    first, second = (
        ((behind, resolved), (ahead, firing)) if resolve_first else ((ahead, firing), (behind, resolved))
    )
    first[0].submit([first[1]])
    clock.advance(1)
    second[0].submit([second[1]])
    (firing_job,) = [j for j in enqueuer.sent if j.alert.alert.status.value == "firing"]
    outcome = service(clock, gate, publisher).attempt(firing_job)
    if resolve_first:
        assert isinstance(outcome, Delivered)  # a new incident after the resolve
    else:
        assert outcome == Superseded()


def test_a_resolve_waits_while_a_firing_attempt_is_on_the_wire() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    firing = job("f", "firing", 1.0)
    gate.enter(GateEntry("hook", firing.alert.alert.fingerprint, "f", True, 1.0, lease_s=10))
    outcome = service(clock, gate, publisher).attempt(job("r", "resolved", 2.0))
    assert isinstance(outcome, Deferred)
    assert outcome.reason is DeferReason.ORDERING
    gate.leave("hook", firing.alert.alert.fingerprint, "f")
    assert isinstance(service(clock, gate, publisher).attempt(job("r", "resolved", 2.0)), Delivered)


# --- resolve_only_if_fired (prometheus/alertmanager#878) ---------------------------------------


class FailingPublisher(Publisher):
    def publish(self, target, enriched, job_id):  # type: ignore[no-untyped-def]
        self.sent.append(job_id)
        raise PermanentPublishError("HTTP 400 from target 'hook'")


def only_if_fired(clock: FrozenClock, gate: InMemoryOrderGate, publisher: Publisher) -> DeliveryService:
    raw = {"name": "hook", "type": "webhook", "url": "http://h.example/", "resolve_only_if_fired": True}
    return DeliveryService(
        TargetRegistry([parse_target(raw)]),
        publisher,
        InMemoryBreakerStore(clock),
        order_gate=gate,
        retry_policy=lambda _: RetryPolicy(),
        breaker_config=BreakerConfig(),
        default_timeout_s=5,
        clock=clock,
        rng=lambda: 0.0,
    )


def test_a_resolve_whose_firing_was_never_sent_is_superseded_with_the_flag() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    note(gate, job("r", "resolved", 1.0))
    assert only_if_fired(clock, gate, publisher).attempt(job("r", "resolved", 1.0)) == Superseded()
    assert publisher.sent == []


def test_without_the_flag_a_resolve_is_sent_whatever_came_before() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    note(gate, job("r", "resolved", 1.0))
    assert isinstance(service(clock, gate, publisher).attempt(job("r", "resolved", 1.0)), Delivered)


def test_a_resolve_after_a_delivered_firing_is_sent_with_the_flag() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    delivery = only_if_fired(clock, gate, publisher)
    note(gate, job("f", "firing", 1.0))
    assert isinstance(delivery.attempt(job("f", "firing", 1.0)), Delivered)
    clock.advance(1)
    note(gate, job("r", "resolved", 2.0))
    assert isinstance(delivery.attempt(job("r", "resolved", 2.0)), Delivered)
    assert publisher.sent == ["f", "r"]


def test_a_resolve_whose_firing_was_superseded_is_superseded_too() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    delivery = only_if_fired(clock, gate, publisher)
    note(gate, job("f", "firing", 1.0))
    clock.advance(1)
    note(gate, job("r", "resolved", 2.0))
    assert delivery.attempt(job("f", "firing", 1.0)) == Superseded()
    assert delivery.attempt(job("r", "resolved", 2.0)) == Superseded()
    assert publisher.sent == []


def test_a_firing_that_failed_does_not_count_as_fired() -> None:
    clock, failing = FrozenClock(), FailingPublisher()
    gate = InMemoryOrderGate(clock)
    note(gate, job("f", "firing", 1.0))
    outcome = only_if_fired(clock, gate, failing).attempt(job("f", "firing", 1.0))
    assert not isinstance(outcome, Delivered)
    clock.advance(1)
    note(gate, job("r", "resolved", 2.0))
    publisher = Publisher()
    assert only_if_fired(clock, gate, publisher).attempt(job("r", "resolved", 2.0)) == Superseded()
    assert publisher.sent == []


# --- the leave handed to the caller, to settle with the attempt (one round trip) ---------------


def test_a_firing_attempt_hands_its_leave_to_the_caller_who_asks_for_it() -> None:
    clock, publisher = FrozenClock(), Publisher()
    gate = InMemoryOrderGate(clock)
    firing = job("f", "firing", 1.0)
    exits: list[GateExit] = []
    assert isinstance(service(clock, gate, publisher).attempt(firing, exits), Delivered)
    assert exits == [GateExit("hook", firing.alert.alert.fingerprint, "f", delivered=True)]
    # Not left yet: the caller's settlement carries the leave out.
    assert service(clock, gate, publisher).attempt(job("r", "resolved", 2.0)).reason is DeferReason.ORDERING  # type: ignore[union-attr]
    gate.leave(*astuple(exits[0])[:3], delivered=True)
    assert isinstance(service(clock, gate, publisher).attempt(job("r", "resolved", 2.0)), Delivered)


class DownPublisher(Publisher):
    def publish(self, target, enriched, job_id):  # type: ignore[no-untyped-def]
        raise TransientPublishError("HTTP 503 from target 'hook'")


def test_an_attempt_that_raises_leaves_the_gate_itself() -> None:
    clock = FrozenClock()
    gate = InMemoryOrderGate(clock)

    def broken_policy(_: Job) -> RetryPolicy:
        raise ZeroDivisionError("a bug")

    broken = replace(service(clock, gate, DownPublisher()), retry_policy=broken_policy)
    exits: list[GateExit] = []
    with pytest.raises(ZeroDivisionError):
        broken.attempt(job("f", "firing", 1.0), exits)
    assert exits == []
    # The firing's lease is gone: a resolve does not wait for it.
    assert isinstance(service(clock, gate, Publisher()).attempt(job("r", "resolved", 2.0)), Delivered)
