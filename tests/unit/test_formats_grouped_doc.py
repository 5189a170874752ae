"""docs/formats.md's grouped examples are what the formatters build for the documented group:
the guide's alert and a resolved one of the same service, carried by the documented job."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from publishing.alert import AlertStatus
from publishing.formatters import format_payload
from publishing.grouping import AlertGroup
from publishing.targets import TargetFormat
from tests.unit.test_formats_doc import ALERT, JOB_ID, documented_examples, target

RESOLVED = dataclasses.replace(
    ALERT,
    alert=dataclasses.replace(
        ALERT.alert,
        fingerprint="0f1e2d3c4b5a6978",
        alert_name="CheckoutSlow",
        status=AlertStatus.RESOLVED,
        labels={"alertname": "CheckoutSlow", "severity": "warning", "service": "checkout", "env": "prod"},
        annotations={"summary": "checkout p99 above 2 s"},
        ends_at=datetime(2026, 3, 14, 9, 31, 0, tzinfo=UTC),
    ),
    classification=None,
)
GROUP = AlertGroup(
    alert=ALERT.alert,
    classification=ALERT.classification,
    members=(ALERT, RESOLVED),
    group_labels={"service": "checkout"},
    job_ids=(JOB_ID, "3c9d2a71-5b4e-4f08-9a16-7e2d8c0b5f44"),
)


def grouped_example(target_format: TargetFormat) -> object:
    return format_payload(target(target_format), GROUP, JOB_ID)


@pytest.mark.parametrize("target_format", [TargetFormat.WEBHOOK, TargetFormat.SLACK], ids=lambda f: f.value)
def test_each_documented_grouped_body_is_what_the_formatter_builds(target_format: TargetFormat) -> None:
    name = f"{target_format.value}_grouped"
    built = grouped_example(target_format)
    assert documented_examples().get(name) == built, (
        f"docs/formats.md's {name} example is stale; the formatter builds:\n"
        + json.dumps(built, indent=2, ensure_ascii=False)
    )
