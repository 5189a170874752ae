"""Operational events decided in the domain (which outcome raises which event, what is never
sent, the alert an event becomes, the ``events:`` key), the sender over in-memory fakes, and
the delivery-history record of an attempt."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from publishing.adapters.events import EventSender
from publishing.alert import EnrichedAlert, parse_alertmanager
from publishing.breaker import BreakerState, DeferReason
from publishing.classification import ErrorType
from publishing.delivery import Deferred, Delivered, Failed, Rerouted, RetryScheduled, Superseded
from publishing.events import (
    EVENT_ALERT_NAME,
    EventsConfig,
    EventsSpec,
    EventType,
    OpsEvent,
    about_events_target,
    dlq_over,
    event_alert,
    events_for,
)
from publishing.history import MAX_EXCERPT_CHARS, AttemptResult, attempt_record, status_of
from publishing.job import Job
from publishing.plan import Event, LetterUnwritable, LetterWritten
from publishing.priority import Priority, priority_of
from publishing.submission import Submitter
from publishing.target_config import document_problems, parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryDeduplicator, InMemoryJobTracker, RecordingEnqueuer

NOW = 1_700_000_100.0
FAILURE = {"error_type": "permanent", "error": "HTTP 400 from target 'pd'", "failed_at": NOW, "writes": 0}


def job(**changes: Any) -> Job:
    [alert] = parse_alertmanager(
        {
            "alerts": [
                {"status": "firing", "labels": {"alertname": "Down"}, "startsAt": "2024-05-01T10:00:00Z"}
            ]
        }
    )
    return Job("job-1", "pd", Priority.HIGH, alert, submitted_at=1_700_000_000.0).evolve(**changes)


@pytest.mark.parametrize(
    ("event", "changes", "expected"),
    [
        (RetryScheduled(1.0, ErrorType.TRANSIENT, "HTTP 503", tripped=True), {}, (EventType.BREAKER_OPENED, "pd")),
        (Failed(ErrorType.TRANSIENT, "HTTP 503", tripped=True), {"via": "backup"},
         (EventType.BREAKER_OPENED, "backup")),
        (Delivered(200, 0.1, recovered=True), {}, (EventType.BREAKER_CLOSED, "pd")),
        (Deferred(5.0, BreakerState.CLOSED, DeferReason.PAUSED), {}, (EventType.TARGET_PAUSED, "pd")),
        (Rerouted("backup", "pd down for 60 s"), {}, (EventType.FALLBACK_USED, "pd")),
        (LetterWritten(), {"failure": FAILURE}, (EventType.DEAD_LETTERED, "pd")),
        (RetryScheduled(1.0, ErrorType.TRANSIENT, "HTTP 503"), {}, None),
        (Failed(ErrorType.PERMANENT, "HTTP 400"), {}, None),
        (Delivered(200, 0.1), {}, None),
        (Deferred(5.0, BreakerState.OPEN, DeferReason.BREAKER_OPEN), {}, None),
        (Deferred(0.2, BreakerState.CLOSED, DeferReason.RATE_LIMITED), {}, None),
        (Superseded(), {}, None),
        (LetterUnwritable("database down"), {"failure": FAILURE}, None),
    ],
)  # fmt: skip
def test_which_outcome_raises_which_event(
    event: Event, changes: dict[str, Any], expected: tuple[EventType, str] | None
) -> None:
    found = events_for(job(**changes), event, NOW)
    assert [(e.type, e.target) for e in found] == ([expected] if expected else [])
    assert all(e.at == NOW for e in found)


def test_a_dead_letter_event_names_its_job_and_reason() -> None:
    (event,) = events_for(job(failure=FAILURE), LetterWritten(), NOW)
    assert event.job_id == "job-1"
    assert event.reason == "permanent: HTTP 400 from target 'pd'"


CONFIG = EventsConfig(("ops",), frozenset(EventType), 10)


@pytest.mark.parametrize(
    ("event", "changes", "suppressed"),
    [
        (OpsEvent(EventType.BREAKER_OPENED, "ops", NOW, "x"), None, True),
        (OpsEvent(EventType.DEAD_LETTERED, "pd", NOW, "x"), {"target": "ops"}, True),
        (OpsEvent(EventType.BREAKER_OPENED, "backup", NOW, "x"), {"via": "ops"}, True),
        (OpsEvent(EventType.DEAD_LETTERED, "pd", NOW, "x"), {}, False),
        (OpsEvent(EventType.DLQ_OVER, None, NOW, "x"), None, False),
    ],
)
def test_events_about_an_events_target_are_never_sent(
    event: OpsEvent, changes: dict[str, Any] | None, suppressed: bool
) -> None:
    assert about_events_target(event, job(**changes) if changes is not None else None, CONFIG) is suppressed


def test_an_event_is_a_critical_alert_whose_labels_carry_it() -> None:
    event = OpsEvent(EventType.DEAD_LETTERED, "pd", NOW, "x" * 2000, "job-1")
    enriched = event_alert(event)
    alert = enriched.alert
    assert alert.alert_name == EVENT_ALERT_NAME
    assert dict(alert.labels) == {
        "alertname": EVENT_ALERT_NAME, "severity": "critical", "event": "dead_lettered", "target": "pd",
        "job_id": "job-1",
    }  # fmt: skip
    assert priority_of(enriched) is Priority.HIGH
    assert len(alert.annotations["reason"]) == 500
    assert alert.starts_at.timestamp() == NOW
    assert enriched.enrichment_metadata["publishing_event"]["type"] == "dead_lettered"
    # Round-trips as a job carries it; distinct events get distinct fingerprints.
    assert EnrichedAlert.from_dict(enriched.to_dict()) == enriched
    other = event_alert(OpsEvent(EventType.DEAD_LETTERED, "pd", NOW, "x", "job-2"))
    assert other.alert.fingerprint != alert.fingerprint
    assert "target" not in event_alert(dlq_over(12, 10, NOW)).alert.labels


def test_the_events_key_defaults_and_refusals() -> None:
    config = EventsConfig.from_spec(EventsSpec.model_validate({"targets": ["ops", "ops"]}))
    assert config.targets == ("ops",) and config.on == frozenset(EventType) and config.dlq_over is None
    assert not EventsConfig.from_spec(None).enabled
    refused: list[dict[str, Any]] = [
        {"targets": []},
        {"targets": ["ops"], "on": ["nope"]},
        {"targets": ["ops"], "dlq_over": 0},
        {"targets": ["ops"], "extra": 1},
    ]
    for bad in refused:
        with pytest.raises(ValidationError):
            EventsSpec.model_validate(bad)
    _, problems = document_problems({"targets": [], "events": {"targets": ["ops"], "on": ["nope"]}}, "t.yaml")
    assert problems and problems[0].startswith("t.yaml events.on.0")
    assert document_problems({"targets": [], "events": {"targets": ["ops"]}}, "t.yaml") == ([], [])


class Marks:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def first(self, kind: str, subject: str, period_s: float) -> bool:
        fresh = (kind, subject) not in self.seen
        self.seen.add((kind, subject))
        return fresh

    def crossed(self, name: str, over: bool) -> bool:
        return over


def sender(on: frozenset[EventType]) -> tuple[EventSender, RecordingEnqueuer]:
    clock = FrozenClock()
    registry = TargetRegistry(
        parse_target({"name": name, "type": "webhook", "url": f"http://127.0.0.1:9/{name}"})
        for name in ("pd", "ops")
    )
    enqueuer = RecordingEnqueuer()
    submitter = Submitter(
        registry, InMemoryJobTracker(), InMemoryDeduplicator(clock), enqueuer, dedup_window_s=300, clock=clock
    )
    return EventSender(lambda: EventsConfig(("ops",), on), registry, submitter, Marks()), enqueuer


def test_the_sender_enqueues_wanted_events_once_a_period_and_suppresses_loops() -> None:
    send, enqueued = sender(frozenset({EventType.DEAD_LETTERED, EventType.TARGET_PAUSED}))
    send.after(job(failure=FAILURE), LetterWritten(), NOW)
    paused = Deferred(5.0, BreakerState.CLOSED, DeferReason.PAUSED)
    send.after(job(), paused, NOW)
    send.after(job(job_id="job-2"), paused, NOW)  # the same pause, seen by another job
    send.after(job(), Delivered(200, 0.1, recovered=True), NOW)  # not wanted
    send.after(job(target="ops", failure=FAILURE), LetterWritten(), NOW)  # about ops itself
    assert [(j.target, j.priority, j.alert.alert.labels["event"]) for j in enqueued.sent] == [
        ("ops", Priority.HIGH, "dead_lettered"),
        ("ops", Priority.HIGH, "target_paused"),
    ]


def test_the_attempt_record_of_each_outcome() -> None:
    failed = attempt_record(job(retries=2), RetryScheduled(1.0, ErrorType.TRANSIENT, "E: HTTP 503 from target 'pd'"),
                            NOW, 0.5, lambda: "id-1")  # fmt: skip
    assert failed is not None
    assert (failed.attempt, failed.status_code, failed.result, failed.error_type) == (
        3, 503, AttemptResult.RETRY, ErrorType.TRANSIENT
    )  # fmt: skip
    assert failed.alert == job().alert.to_dict() and failed.fingerprint == job().alert.alert.fingerprint
    delivered = attempt_record(job(via="backup"), Delivered(202, 0.1), NOW, 0.1)
    assert delivered is not None and (delivered.status_code, delivered.sent_to) == (202, "backup")
    long = attempt_record(job(), Failed(ErrorType.PERMANENT, "x" * 900), NOW, 0.1)
    assert long is not None and long.excerpt is not None and len(long.excerpt) == MAX_EXCERPT_CHARS
    assert long.status_code is None
    for nothing_sent in (Superseded(), Rerouted("b", "down"), Deferred(1.0, BreakerState.OPEN)):
        assert attempt_record(job(), nothing_sent, NOW, 0.0) is None
    assert status_of("ConnectionError: refused") is None
    assert type(failed).from_record(failed.to_record()) == failed
