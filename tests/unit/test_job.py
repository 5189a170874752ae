"""A job as a task message: a faithful round trip that carries the target's name only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from publishing.alert import parse_alertmanager, parse_enriched
from publishing.job import Job
from publishing.priority import Priority
from publishing.target_config import parse_target

ROUTING_KEY = "R0UT1NGKEY-job-test-0123"


def enriched_payload() -> dict[str, Any]:
    return {
        "alert": {
            "fingerprint": "f00dfeedf00dfeed",
            "alert_name": "DiskFull",
            "status": "resolved",
            "labels": {"alertname": "DiskFull", "severity": "critical"},
            "annotations": {"summary": "disk full", "runbook_url": "https://runbooks/disk"},
            "starts_at": "2024-05-01T10:00:00.123456789Z",
            "ends_at": "2024-05-01T10:30:00Z",
            "generator_url": "http://prom/graph",
        },
        "classification": {
            "severity": "critical",
            "confidence": 0.9,
            "reasoning": "r",
            "recommendations": ["a", "b"],
        },
        "enrichment_metadata": {"model": "v2"},
    }


def job(**overrides: Any) -> Job:
    [alert] = parse_enriched(enriched_payload())
    fields: dict[str, Any] = {
        "job_id": "0b6c1f7e-3c1e-4c55-9b7e-0d5a1e2f3a4b",
        "target": "pagerduty-prod",
        "priority": Priority.HIGH,
        "alert": alert,
        "submitted_at": 1_714_557_600.25,
    }
    fields.update(overrides)
    return Job(**fields)


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(job(), id="fresh"),
        pytest.param(
            job(
                replayed_from="9d8c7b6a-0000-4000-8000-000000000001",
                deferrals=3,
                deferred_since=1_714_557_700.5,
                failure={"error_type": "transient", "error": "circuit open", "failed_at": 1_714_557_800.0, "writes": 2},
            ),
            id="replayed-deferred-failed",
        ),
        pytest.param(
            job(alert=parse_alertmanager({"alerts": [{"status": "firing", "labels": {"alertname": "X"}, "startsAt": "2024-05-01T10:00:00Z"}]})[0], priority=Priority.LOW),
            id="alertmanager-alert-derived-fingerprint",
        ),
    ],
)  # fmt: skip
def test_message_round_trip(original: Job) -> None:
    message = original.to_message()
    assert Job.from_message(json.loads(json.dumps(message))) == original


def test_message_carries_the_target_name_and_no_secret() -> None:
    target = parse_target(
        {
            "name": "pagerduty-prod",
            "type": "pagerduty",
            "url": "https://events.pagerduty.com/v2/enqueue",
            "routing_key": ROUTING_KEY,
        }
    )
    message = job(target=target.name).to_message()
    text = json.dumps(message)
    assert message["target"] == "pagerduty-prod"
    assert message["priority"] == "high"
    assert ROUTING_KEY not in text
    assert "events.pagerduty.com" not in text


def test_evolve_changes_only_the_given_fields() -> None:
    original = job()
    later = original.evolve(deferrals=2, deferred_since=5.0)
    assert (later.deferrals, later.deferred_since) == (2, 5.0)
    assert later.evolve(deferrals=0, deferred_since=None) == original
