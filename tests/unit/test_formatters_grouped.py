"""A storm group's one message in every format that groups: each alert is in it (up to the
listing cap, then "+k more"), firing first, within the provider's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from publishing.alert import parse_alertmanager
from publishing.formatters import GROUP_FORMATTERS, format_payload
from publishing.grouping import GroupMember, message_of
from publishing.job import Job
from publishing.priority import Priority
from publishing.target_config import parse_target
from publishing.targets import Target, TargetFormat

URLS = {
    TargetFormat.SLACK: {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
    TargetFormat.WEBHOOK: {"type": "webhook", "url": "https://h.example/x"},
    TargetFormat.ALERTMANAGER: {"type": "webhook", "format": "alertmanager", "url": "https://h.example/x"},
    TargetFormat.MSTEAMS: {"type": "msteams", "url": "https://h.example/x"},
    TargetFormat.DISCORD: {"type": "discord", "url": "https://discord.com/api/webhooks/1/T"},
    TargetFormat.EMAIL: {"type": "email", "smtp": {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]}},
}  # fmt: skip


def target(target_format: TargetFormat, **extra: Any) -> Target:
    raw = {"name": "t", **URLS[target_format], "group_by": ["cluster"], "group_wait_s": 1.0, **extra}
    return parse_target(raw)


def group(count: int, resolved_every: int = 0) -> Any:
    members = []
    for i in range(count):
        status = "resolved" if resolved_every and i % resolved_every == 0 else "firing"
        raw = {
            "status": status,
            "labels": {"alertname": f"Disk{i}", "cluster": "eu-1", "severity": "critical"},
            "annotations": {"summary": f"disk {i} is full " + "x" * 80},
            "startsAt": "2026-01-01T00:00:00Z",
            "fingerprint": f"fp{i:04d}",
        }
        (alert,) = parse_alertmanager({"alerts": [raw]})
        members.append(GroupMember.of(Job(f"j{i}", "t", Priority.HIGH, alert, 0.0)))
    return message_of(members, ["cluster"])


def test_every_format_a_target_may_group_in_has_a_group_formatter() -> None:
    assert set(GROUP_FORMATTERS) == set(URLS)


@pytest.mark.parametrize("target_format", list(URLS), ids=lambda f: f.value)
def test_a_small_group_lists_every_alert_firing_first(target_format: TargetFormat) -> None:
    body = json.dumps(format_payload(target(target_format), group(5, resolved_every=2), "carrier"))
    positions = [body.index(f"fp{i:04d}") for i in range(5)]
    # 0, 2 and 4 resolved: the firing 1 and 3 come first.
    assert positions[1] < positions[3] < positions[0] < positions[2] < positions[4]
    assert "more" not in body.replace("more_", "")


@pytest.mark.parametrize(
    "target_format", [TargetFormat.SLACK, TargetFormat.MSTEAMS, TargetFormat.DISCORD, TargetFormat.EMAIL]
)
def test_past_the_listing_cap_the_rest_are_counted(target_format: TargetFormat) -> None:
    body = json.dumps(format_payload(target(target_format, group_max_alerts=3), group(10), "carrier"))
    assert "fp0002" in body and "fp0003" not in body and "+7 more" in body


def test_a_slack_group_stays_within_slacks_limits_listing_what_they_hold() -> None:
    payload = format_payload(target(TargetFormat.SLACK), group(2000), "carrier")
    assert len(payload["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"] if b["type"] == "section")
    listed = sum(1 for i in range(2000) if f"fp{i:04d}" in json.dumps(payload))
    assert 500 <= listed < 2000 and f"+{2000 - listed} more" in json.dumps(payload)


def test_a_discord_group_stays_within_the_embed_description_limit() -> None:
    payload = format_payload(target(TargetFormat.DISCORD), group(200), "carrier")
    assert len(payload["embeds"][0]["description"]) <= 4096


def test_webhook_and_alertmanager_bodies_carry_every_alert() -> None:
    webhook = format_payload(target(TargetFormat.WEBHOOK), group(300), "carrier")
    assert len(webhook["alerts"]) == 300 and webhook["job_id"] == "carrier"
    assert webhook["group"] == {"cluster": "eu-1"}
    am = format_payload(target(TargetFormat.ALERTMANAGER), group(300), "carrier")
    assert len(am["alerts"]) == 300 and am["groupLabels"] == {"cluster": "eu-1"}
    assert am["commonLabels"] == {"cluster": "eu-1", "severity": "critical"}


def test_a_group_of_one_is_the_formats_own_single_alert_message() -> None:
    one = group(1)
    assert format_payload(target(TargetFormat.WEBHOOK), one, "c") == format_payload(
        target(TargetFormat.WEBHOOK), one.members[0], "c"
    )
