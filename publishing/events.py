"""Operational events pushed to the targets a targets file names under ``events:``
(docs/design.md (Events)): which events an attempt's outcome produces, which are sent, and
the alert each becomes, so that the formatters and webhook signing apply unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from publishing.alert import Alert, AlertStatus, EnrichedAlert
from publishing.breaker import DeferReason
from publishing.delivery import Deferred, Delivered, Failed, Rerouted, RetryScheduled
from publishing.job import Job
from publishing.plan import Event, LetterWritten

# Reserved: an alert of this name is one of ours, never a customer's.
EVENT_ALERT_NAME = "PublishingEvent"
# Pauses and reroutes are seen by every job that meets them: one event a target this often.
REPEAT_EVERY_S = 300.0
MAX_REASON_CHARS = 500


class EventType(StrEnum):
    DEAD_LETTERED = "dead_lettered"
    BREAKER_OPENED = "breaker_opened"
    BREAKER_CLOSED = "breaker_closed"
    TARGET_PAUSED = "target_paused"
    FALLBACK_USED = "fallback_used"
    DLQ_OVER = "dlq_over"


# Sent at most once a ``REPEAT_EVERY_S`` per target; the others are one a transition or a job.
REPEATED = frozenset({EventType.TARGET_PAUSED, EventType.FALLBACK_USED})


class EventsSpec(BaseModel):
    """The ``events:`` key of a targets file: where operational events go, and which."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Events")

    targets: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    on: list[Annotated[EventType, Field(strict=False)]] = Field(
        default_factory=lambda: list(EventType), json_schema_extra={"uniqueItems": True}
    )
    dlq_over: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Send dlq_over once the DLQ holds more rows than this (once a crossing)."
    )


@dataclass(frozen=True)
class EventsConfig:
    targets: tuple[str, ...] = ()
    on: frozenset[EventType] = frozenset()
    dlq_over: int | None = None

    @classmethod
    def from_spec(cls, spec: EventsSpec | None) -> EventsConfig:
        if spec is None:
            return cls()
        return cls(tuple(dict.fromkeys(spec.targets)), frozenset(spec.on), spec.dlq_over)

    @property
    def enabled(self) -> bool:
        return bool(self.targets and self.on)


class EventMarks(Protocol):
    """Fleet-wide memory of what was sent (Redis in production)."""

    def first(self, kind: str, subject: str, period_s: float) -> bool:
        """True for the first call of a ``(kind, subject)`` in ``period_s``."""
        ...

    def crossed(self, name: str, over: bool) -> bool:
        """True once when ``over`` becomes true; armed again once it has been false."""
        ...


@dataclass(frozen=True)
class OpsEvent:
    type: EventType
    target: str | None
    at: float
    reason: str
    job_id: str | None = None


def events_for(job: Job, event: Event, now: float) -> list[OpsEvent]:
    """What one run of a job tells the operators, from its outcome (or its DLQ write)."""
    sent_to = job.via or job.target
    if isinstance(event, RetryScheduled | Failed) and event.tripped:
        return [
            OpsEvent(
                EventType.BREAKER_OPENED, sent_to, now, f"too many consecutive failures (last: {event.error})"
            )
        ]
    if isinstance(event, Delivered) and event.recovered:
        return [OpsEvent(EventType.BREAKER_CLOSED, sent_to, now, "the target recovered")]
    if isinstance(event, Deferred) and event.reason is DeferReason.PAUSED:
        return [
            OpsEvent(EventType.TARGET_PAUSED, sent_to, now, "the target asked to be paused (Retry-After)")
        ]
    if isinstance(event, Rerouted):
        return [
            OpsEvent(
                EventType.FALLBACK_USED, job.target, now, f"sent to {event.via}: {event.reason}", job.job_id
            )
        ]
    if isinstance(event, LetterWritten) and job.failure is not None:
        reason = f"{job.failure.get('error_type', 'unknown')}: {job.failure.get('error', '')}"
        return [OpsEvent(EventType.DEAD_LETTERED, job.target, now, reason, job.job_id)]
    return []


def dlq_over(size: int, threshold: int, now: float) -> OpsEvent:
    return OpsEvent(EventType.DLQ_OVER, None, now, f"the DLQ holds {size} rows, more than {threshold}")


def about_events_target(event: OpsEvent, job: Job | None, config: EventsConfig) -> bool:
    """An event about an events target (or raised by one of its jobs) is never sent: a failing
    events target would otherwise report itself to itself without end."""
    names = set(config.targets)
    return (event.target in names) or (job is not None and (job.target in names or job.via in names))


def event_alert(event: OpsEvent) -> EnrichedAlert:
    """The event as an alert: labels carry its type, target and job; severity critical, so it
    goes on the ``high`` queue."""
    at = datetime.fromtimestamp(event.at, UTC)
    reason = (
        event.reason if len(event.reason) <= MAX_REASON_CHARS else event.reason[: MAX_REASON_CHARS - 1] + "…"
    )
    labels = {"alertname": EVENT_ALERT_NAME, "severity": "critical", "event": event.type.value}
    if event.target:
        labels["target"] = event.target
    if event.job_id:
        labels["job_id"] = event.job_id
    subject = f" on {event.target}" if event.target else ""
    identity = f"{event.type.value}|{event.target}|{event.job_id}|{event.at!r}"
    return EnrichedAlert(
        Alert(
            fingerprint=hashlib.sha256(identity.encode()).hexdigest()[:32],
            alert_name=EVENT_ALERT_NAME,
            status=AlertStatus.FIRING,
            labels=labels,
            annotations={"summary": f"publishing: {event.type.value}{subject}", "reason": reason},
            starts_at=at,
        ),
        enrichment_metadata={
            "publishing_event": {
                "type": event.type.value,
                "at": at.isoformat().replace("+00:00", "Z"),
                "target": event.target,
                "job_id": event.job_id,
                "reason": reason,
            }
        },
    )
