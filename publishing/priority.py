"""Priority of an alert: the original's six rules, in order, with exact matching."""

from __future__ import annotations

from enum import StrEnum

from publishing.alert import AlertStatus, EnrichedAlert, Severity


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def priority_of(enriched: EnrichedAlert | None) -> Priority:
    if enriched is None:
        return Priority.MEDIUM
    alert = enriched.alert
    label_severity = alert.labels.get("severity")
    if label_severity == "critical" and alert.status is AlertStatus.FIRING:
        return Priority.HIGH
    if enriched.classification is not None and enriched.classification.severity is Severity.CRITICAL:
        return Priority.HIGH
    if alert.status is AlertStatus.RESOLVED:
        return Priority.LOW
    if label_severity == "info":
        return Priority.LOW
    return Priority.MEDIUM
