"""Fallback routes, decided by the delivery service over in-memory fakes."""

from __future__ import annotations

import pytest

from publishing.adapters.target_files import load_targets
from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerConfig
from publishing.delivery import Deferred, Delivered, DeliveryService, Rerouted
from publishing.errors import ConfigError, PermanentPublishError
from publishing.job import Job
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryBreakerStore

CONFIG = BreakerConfig(failure_threshold=1, open_timeout_s=30)


class Receipt:
    status_code = 200
    duration_s = 0.01


class Publisher:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.sent: list[str] = []

    def publish(self, target, enriched, job_id):  # type: ignore[no-untyped-def]
        self.sent.append(target.name)
        if target.name in self.failing:
            raise PermanentPublishError("HTTP 400", status_code=400)
        return Receipt()


def job(priority: Priority, via: str | None = None) -> Job:
    raw = {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}
    (alert,) = parse_alertmanager({"alerts": [raw]})
    return Job("j", "primary", priority, alert, 0.0, via=via)


def setup(failing: set[str] = frozenset(), fallback_after_s: float = 60):  # type: ignore[no-untyped-def]
    clock = FrozenClock()
    registry = TargetRegistry(
        [
            parse_target({"name": "primary", "type": "webhook", "url": "http://p.example/", "fallback": ["backup"],
                          "fallback_after_s": fallback_after_s}),
            parse_target({"name": "backup", "type": "webhook", "url": "http://b.example/"}),
        ]
    )  # fmt: skip
    breakers = InMemoryBreakerStore(clock)
    publisher = Publisher(set(failing))
    service = DeliveryService(
        registry,
        publisher,
        breakers,
        retry_policy=lambda _: RetryPolicy(),
        breaker_config=CONFIG,
        default_timeout_s=5,
        clock=clock,
        rng=lambda: 0.0,
    )
    return clock, breakers, publisher, service


def test_a_high_job_waits_until_the_target_has_been_down_fallback_after_s() -> None:
    clock, breakers, _, service = setup()
    breakers.record_failure("primary", CONFIG, None)
    assert isinstance(service.attempt(job(Priority.HIGH)), Deferred)
    clock.advance(29)
    assert isinstance(service.attempt(job(Priority.HIGH)), Deferred)
    breakers.record_failure("primary", CONFIG, None)
    clock.advance(31)  # half-open now, the probe slot taken below
    breakers.acquire("primary", CONFIG, 30)
    assert service.attempt(job(Priority.HIGH)) == Rerouted("backup", "primary down for 60 s")


def test_a_deferred_high_job_wakes_when_its_fallback_is_due_not_when_the_breaker_half_opens() -> None:
    clock, breakers, publisher, service = setup(fallback_after_s=3)  # open timeout 30 s
    breakers.record_failure("primary", CONFIG, None)
    clock.advance(2)
    deferred = service.attempt(job(Priority.HIGH))
    assert isinstance(deferred, Deferred)
    assert deferred.delay_s <= 1.0
    clock.advance(deferred.delay_s)
    assert service.attempt(job(Priority.HIGH)) == Rerouted("backup", "primary down for 3 s")
    assert publisher.sent == []


def test_a_job_without_a_fallback_still_waits_for_the_breaker() -> None:
    clock, breakers, _, service = setup(fallback_after_s=3)
    breakers.record_failure("primary", CONFIG, None)
    clock.advance(2)
    deferred = service.attempt(job(Priority.MEDIUM))
    assert isinstance(deferred, Deferred)
    assert deferred.delay_s == 28.0


def test_medium_jobs_do_not_fall_back_unless_the_target_says_so() -> None:
    clock, breakers, _, service = setup()
    breakers.record_failure("primary", CONFIG, None)
    clock.advance(29)
    assert isinstance(service.attempt(job(Priority.MEDIUM)), Deferred)


def test_a_job_on_its_fallback_is_delivered_there() -> None:
    _, _, publisher, service = setup()
    assert isinstance(service.attempt(job(Priority.HIGH, via="backup")), Delivered)
    assert publisher.sent == ["backup"]


def test_a_high_job_failing_for_good_is_rerouted_once() -> None:
    *_, service = setup(failing={"primary", "backup"})
    outcome = service.attempt(job(Priority.HIGH))
    assert isinstance(outcome, Rerouted)
    assert outcome.via == "backup"
    assert not isinstance(service.attempt(job(Priority.HIGH, via="backup")), Rerouted)


def test_a_fallback_must_name_a_configured_target(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.yaml"
    path.write_text("targets:\n  - {name: a, type: webhook, url: 'http://a.example/', fallback: [ghost]}\n")
    with pytest.raises(ConfigError, match="ghost"):
        load_targets(path)
    with pytest.raises(ConfigError, match="own fallback"):
        parse_target({"name": "a", "type": "webhook", "url": "http://a.example/", "fallback": ["a"]})
