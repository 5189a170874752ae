"""The six priority rules of docs/design.md (Priority), in order, with exact matching."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from publishing.alert import Alert, AlertStatus, Classification, EnrichedAlert, Severity
from publishing.priority import Priority, priority_of


def enriched(
    status: str = "firing",
    severity_label: str | None = None,
    classification: str | None = None,
) -> EnrichedAlert:
    labels = {"alertname": "Test"}
    if severity_label is not None:
        labels["severity"] = severity_label
    return EnrichedAlert(
        alert=Alert(
            fingerprint="fp",
            alert_name="Test",
            status=AlertStatus(status),
            labels=labels,
            annotations={},
            starts_at=datetime(2024, 5, 1, tzinfo=UTC),
        ),
        classification=Classification(Severity(classification), 0.9) if classification else None,
    )


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        # rule 1
        pytest.param(None, Priority.MEDIUM, id="r1-no-alert"),
        # rule 2
        pytest.param(enriched("firing", "critical"), Priority.HIGH, id="r2-critical-label-firing"),
        pytest.param(enriched("firing", "critical", "info"), Priority.HIGH, id="r2-label-wins-over-classification"),
        pytest.param(enriched("firing", "Critical"), Priority.MEDIUM, id="r2-exact-Critical-is-not-critical"),
        pytest.param(enriched("firing", "CRITICAL"), Priority.MEDIUM, id="r2-exact-upper-case"),
        pytest.param(enriched("firing", " critical"), Priority.MEDIUM, id="r2-exact-whitespace"),
        pytest.param(enriched("resolved", "critical"), Priority.LOW, id="r2-critical-label-but-resolved-is-low"),
        # rule 3
        pytest.param(enriched("firing", None, "critical"), Priority.HIGH, id="r3-classification-critical"),
        pytest.param(enriched("resolved", None, "critical"), Priority.HIGH, id="r3-classification-critical-resolved"),
        pytest.param(enriched("resolved", "info", "critical"), Priority.HIGH, id="r3-before-r4-and-r5"),
        pytest.param(enriched("firing", "warning", "critical"), Priority.HIGH, id="r3-over-warning-label"),
        # rule 4
        pytest.param(enriched("resolved"), Priority.LOW, id="r4-resolved"),
        pytest.param(enriched("resolved", "info"), Priority.LOW, id="r4-resolved-info"),
        pytest.param(enriched("resolved", "warning", "warning"), Priority.LOW, id="r4-resolved-warning"),
        # rule 5
        pytest.param(enriched("firing", "info"), Priority.LOW, id="r5-info-label"),
        pytest.param(enriched("firing", "info", "warning"), Priority.LOW, id="r5-label-not-classification"),
        pytest.param(enriched("firing", "Info"), Priority.MEDIUM, id="r5-exact-Info-is-not-info"),
        # rule 6
        pytest.param(enriched("firing"), Priority.MEDIUM, id="r6-no-severity"),
        pytest.param(enriched("firing", "warning"), Priority.MEDIUM, id="r6-warning"),
        pytest.param(enriched("firing", None, "info"), Priority.MEDIUM, id="r6-classification-info-only"),
        pytest.param(enriched("firing", None, "noise"), Priority.MEDIUM, id="r6-classification-noise"),
    ],
)  # fmt: skip
def test_priority_rules(alert: EnrichedAlert | None, expected: Priority) -> None:
    assert priority_of(alert) is expected


def test_priority_values_are_the_queue_names() -> None:
    assert [p.value for p in Priority] == ["high", "medium", "low"]
