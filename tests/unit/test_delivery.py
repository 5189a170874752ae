"""One attempt decided by the delivery service over in-memory fakes: what it asks of the
breaker on the happy path and after a failure, and how it counts the attempt's starts."""

from __future__ import annotations

from typing import Any

from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerConfig
from publishing.delivery import Delivered, DeliveryService, Failed, Redelivered, RetryScheduled, Start
from publishing.errors import TransientPublishError
from publishing.job import Job
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryBreakerStore, InMemoryJobTracker


class CountingBreakers(InMemoryBreakerStore):
    def __init__(self, clock: FrozenClock) -> None:
        super().__init__(clock)
        self.successes_recorded = 0

    def record_success(self, target, config, probe_id):  # type: ignore[no-untyped-def]
        self.successes_recorded += 1
        return super().record_success(target, config, probe_id)


class Receipt:
    status_code = 202
    duration_s = 0.01


class FlakyPublisher:
    def __init__(self) -> None:
        self.fail_next = False

    def publish(self, target, enriched, job_id):  # type: ignore[no-untyped-def]
        if self.fail_next:
            self.fail_next = False
            raise TransientPublishError("HTTP 503", status_code=503)
        return Receipt()


def job() -> Job:
    raw = {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}
    (alert,) = parse_alertmanager({"alerts": [raw]})
    return Job("j", "hook", Priority.HIGH, alert, 0.0)


def service(
    publisher: FlakyPublisher, breakers: InMemoryBreakerStore, clock: FrozenClock, **options: Any
) -> DeliveryService:
    """The delivery service of one webhook target ``hook`` (``targets`` to change that)."""
    targets = options.pop("targets", [{"name": "hook", "type": "webhook", "url": "http://h.example/"}])
    return DeliveryService(
        TargetRegistry([parse_target(t) for t in targets]),
        publisher,
        breakers,
        retry_policy=lambda _: RetryPolicy(),
        breaker_config=BreakerConfig(),
        default_timeout_s=5,
        clock=clock,
        rng=lambda: 0.0,
        **options,
    )


def test_a_success_on_a_clean_breaker_costs_no_breaker_write_but_one_after_a_failure_does() -> None:
    clock = FrozenClock()
    breakers = CountingBreakers(clock)
    publisher = FlakyPublisher()
    delivery = service(publisher, breakers, clock)
    assert isinstance(delivery.attempt(job()), Delivered)
    assert breakers.successes_recorded == 0

    publisher.fail_next = True
    assert isinstance(delivery.attempt(job()), RetryScheduled)
    assert breakers.status("hook").consecutive_failures == 1
    assert isinstance(delivery.attempt(job()), Delivered)
    assert breakers.successes_recorded == 1
    assert breakers.status("hook").consecutive_failures == 0


def test_without_an_admission_round_trip_the_start_is_marked_first_and_an_over_started_job_is_not_sent() -> (
    None
):
    publisher = FlakyPublisher()
    sent: list[str] = []
    publisher.publish = lambda target, enriched, job_id: sent.append(job_id) or Receipt()  # type: ignore[method-assign]
    clock = FrozenClock()
    delivery = service(publisher, InMemoryBreakerStore(clock), clock, starts=InMemoryJobTracker())
    starts = [Start("j", "0.0.0", float(n), max_starts=2) for n in range(3)]
    outcomes = [delivery.attempt(job(), start=s) for s in starts]
    assert [s.count for s in starts] == [1, 2, 3]
    assert isinstance(outcomes[0], Delivered) and isinstance(outcomes[1], Delivered)
    assert outcomes[2] == Redelivered(3)
    assert sent == ["j", "j"]


def test_an_attempt_of_an_unknown_target_still_counts_its_start() -> None:
    clock = FrozenClock()
    delivery = service(
        FlakyPublisher(), InMemoryBreakerStore(clock), clock, starts=InMemoryJobTracker(), targets=[]
    )
    start = Start("j", "0.0.0", 1.0, max_starts=3)
    assert isinstance(delivery.attempt(job(), start=start), Failed)
    assert start.count == 1
