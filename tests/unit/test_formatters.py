"""The outbound payloads of docs/design.md (Targets and payloads), field by field against the formats the receivers publish:
PagerDuty Events API v2, Slack Block Kit, Rootly alerts, flat webhook JSON, Alertmanager v4."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import pytest

from publishing.alert import GO_ZERO_TIME, EnrichedAlert, FieldLimits, parse_alertmanager, parse_enriched
from publishing.errors import PermanentPublishError
from publishing.formatters import format_payload
from publishing.target_config import parse_target
from publishing.targets import Target, TargetFormat

JOB_ID = "2f1e6a3c-0b7d-4d59-9d0e-5b8f1c2a7e44"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
STARTS_AT = "2024-05-01T10:00:00Z"
ENDS_AT = "2024-05-01T10:30:00Z"
GENERATOR_URL = "http://prometheus.example.com:9090/graph?g0.expr=up"
CLASSIFICATION = {
    "severity": "critical",
    "confidence": 0.87,
    "reasoning": "Error rate is 40% and rising across every replica.",
    "recommendations": ["Roll back release 1.4.2", "Page the payments on-call"],
}
TARGETS: dict[TargetFormat, dict[str, Any]] = {
    TargetFormat.PAGERDUTY: {
        "type": "pagerduty",
        "url": "https://events.pagerduty.com/v2/enqueue",
        "routing_key": ROUTING_KEY,
    },
    TargetFormat.SLACK: {"type": "slack", "url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX"},
    TargetFormat.ROOTLY: {
        "type": "rootly",
        "url": "https://api.rootly.com/v1/alerts",
        "api_token": "rootly-t0ken",
    },
    TargetFormat.WEBHOOK: {"type": "webhook", "url": "https://hooks.example.com/alerts"},
    TargetFormat.ALERTMANAGER: {"type": "webhook", "url": "https://am.example.com/api/v2/alerts"},
    TargetFormat.MSTEAMS: {"type": "msteams", "url": "https://prod.example.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s1g"},
    TargetFormat.OPSGENIE: {"type": "opsgenie", "url": "https://api.opsgenie.com/v2/alerts", "api_key": "genie-k3y"},
    TargetFormat.EMAIL: {"type": "email", "smtp": {"host": "smtp.example.com", "from": "alerts@example.com", "to": ["oncall@example.com"]}},
    TargetFormat.DISCORD: {"type": "discord", "url": "https://discord.com/api/webhooks/123/t0ken"},
}  # fmt: skip


def target(fmt: TargetFormat) -> Target:
    return parse_target({"name": f"{fmt.value}-test", "format": fmt.value, **TARGETS[fmt]})


def enriched(
    status: str = "firing",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    classification: dict[str, Any] | None = None,
    generator_url: str = GENERATOR_URL,
) -> EnrichedAlert:
    alert: dict[str, Any] = {
        "fingerprint": "a1b2c3d4e5f60718",
        "alert_name": "HighErrorRate",
        "status": status,
        "labels": {"alertname": "HighErrorRate", "severity": "warning", "instance": "api-1:8080"}
        if labels is None
        else {"alertname": "HighErrorRate", **labels},
        "annotations": {"summary": "Error rate above 5%", "description": "5xx are 40% of responses"}
        if annotations is None
        else annotations,
        "starts_at": STARTS_AT,
        "generator_url": generator_url,
    }
    if status == "resolved":
        alert["ends_at"] = ENDS_AT
    # Generous caps: the formatters must cope with anything a stored or replayed alert holds.
    roomy = FieldLimits(max_labels=1000, max_value_chars=100_000)
    return parse_enriched({"alert": alert, "classification": classification}, limits=roomy)[0]


def is_rfc3339(value: str) -> bool:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


# --- dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(TargetFormat))
def test_every_format_builds_a_json_object(fmt: TargetFormat) -> None:
    for status in ("firing", "resolved"):
        payload = format_payload(target(fmt), enriched(status, classification=CLASSIFICATION), JOB_ID)
        assert isinstance(payload, dict)
        json.dumps(payload, allow_nan=False)


@pytest.mark.parametrize("fmt", list(TargetFormat))
@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param({"starts_at": "yesterday"}, id="starts_at-not-a-datetime"),
        pytest.param({"labels": ["alertname"]}, id="labels-not-a-mapping"),
        pytest.param({"annotations": 42}, id="annotations-not-a-mapping"),
    ],
)
def test_an_alert_the_formatter_cannot_build_is_a_permanent_error(
    fmt: TargetFormat, breakage: dict[str, Any]
) -> None:
    good = enriched(classification=CLASSIFICATION)
    broken = dataclasses.replace(good, alert=dataclasses.replace(good.alert, **breakage))
    with pytest.raises(PermanentPublishError, match="payload the formatter cannot build") as caught:
        format_payload(target(fmt), broken, JOB_ID)
    assert caught.value.__cause__ is not None


def test_a_pagerduty_target_without_routing_key_cannot_be_built() -> None:
    keyless = dataclasses.replace(target(TargetFormat.PAGERDUTY), routing_key=None)
    with pytest.raises(PermanentPublishError, match="routing_key"):
        format_payload(keyless, enriched(), JOB_ID)


# --- PagerDuty Events API v2 ----------------------------------------------------------------

PD_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty(alert: EnrichedAlert) -> dict[str, Any]:
    return format_payload(target(TargetFormat.PAGERDUTY), alert, JOB_ID)


def test_pagerduty_trigger_has_every_required_field() -> None:
    event = pagerduty(enriched(annotations={"summary": "Error rate above 5%", "runbook_url": "https://rb/x"}))
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "a1b2c3d4e5f60718"
    payload = event["payload"]
    assert set(payload) == {"summary", "source", "severity", "timestamp", "custom_details"}
    assert payload["summary"] == "Error rate above 5%"
    assert payload["source"] == "api-1:8080"
    assert payload["severity"] in PD_SEVERITIES
    assert payload["timestamp"] == STARTS_AT and is_rfc3339(payload["timestamp"])
    assert payload["custom_details"] == {
        "labels": {"alertname": "HighErrorRate", "severity": "warning", "instance": "api-1:8080"},
        "annotations": {"summary": "Error rate above 5%", "runbook_url": "https://rb/x"},
    }
    assert event["links"] == [{"href": "https://rb/x", "text": "Runbook"}]
    assert event["client_url"] == GENERATOR_URL
    assert event["client"] == "prometheus.example.com:9090"


def test_pagerduty_trigger_carries_the_classification_in_custom_details() -> None:
    event = pagerduty(enriched(classification=CLASSIFICATION))
    assert event["payload"]["custom_details"]["classification"] == CLASSIFICATION
    assert event["payload"]["severity"] == "critical"


@pytest.mark.parametrize("classification", [None, CLASSIFICATION])
def test_pagerduty_resolve_is_the_key_pair_only(classification: dict[str, Any] | None) -> None:
    event = pagerduty(enriched("resolved", classification=classification))
    assert event == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "a1b2c3d4e5f60718"}


@pytest.mark.parametrize(
    ("label", "classified", "expected"),
    [
        ("critical", None, "critical"),
        ("warning", None, "warning"),
        ("info", None, "info"),
        ("noise", None, "info"),
        ("error", None, "error"),
        ("CRITICAL", None, "critical"),
        ("page-me", None, "warning"),
        (None, None, "warning"),
        ("info", "critical", "critical"),
        ("critical", "noise", "info"),
        (None, "warning", "warning"),
    ],
)
def test_pagerduty_severity_mapping(label: str | None, classified: str | None, expected: str) -> None:
    labels = {"severity": label} if label else {}
    classification = {**CLASSIFICATION, "severity": classified} if classified else None
    event = pagerduty(enriched(labels=labels, classification=classification))
    assert event["payload"]["severity"] == expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"summary": "S", "description": "D"}, "S"),
        ({"description": "D"}, "D"),
        ({}, "HighErrorRate"),
        ({"summary": "x" * 5000}, "x" * 1024),
    ],
)
def test_pagerduty_summary_falls_back_and_is_capped(annotations: dict[str, str], expected: str) -> None:
    assert pagerduty(enriched(annotations=annotations))["payload"]["summary"] == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"instance": "i", "job": "j", "service": "s"}, "i"),
        ({"job": "j", "service": "s"}, "j"),
        ({"service": "s"}, "s"),
        ({}, "alert-publishing"),
    ],
)
def test_pagerduty_source(labels: dict[str, str], expected: str) -> None:
    assert pagerduty(enriched(labels=labels))["payload"]["source"] == expected


def test_pagerduty_links_come_from_url_annotations_only() -> None:
    annotations = {
        "summary": "S",
        "runbook": "https://wiki/runbook",
        "dashboard": "https://grafana/d/abc",
        "grafana_url": "https://grafana/d/abc",  # the same link once
        "dashboard_url": "see the ops board",  # not a URL: PagerDuty would reject it
        "other_url": "https://elsewhere",
    }
    event = pagerduty(enriched(annotations=annotations))
    assert event["links"] == [
        {"href": "https://wiki/runbook", "text": "Runbook"},
        {"href": "https://grafana/d/abc", "text": "Dashboard"},
    ]


def test_pagerduty_omits_links_and_client_when_there_are_none() -> None:
    event = pagerduty(enriched(annotations={"summary": "S"}, generator_url=""))
    assert "links" not in event and "client" not in event and "client_url" not in event


# --- Slack Block Kit ------------------------------------------------------------------------

BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text"}


def slack(alert: EnrichedAlert) -> dict[str, Any]:
    return format_payload(target(TargetFormat.SLACK), alert, JOB_ID)


def assert_valid_block_kit(message: dict[str, Any]) -> None:
    assert isinstance(message["text"], str) and message["text"]
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks + message["attachments"][0]["blocks"]:
        assert block["type"] in BLOCK_TYPES
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 1 <= len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn"
                assert 1 <= len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert field["type"] == "mrkdwn" and 1 <= len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])


@pytest.mark.parametrize("status", ["firing", "resolved"])
@pytest.mark.parametrize("classification", [None, CLASSIFICATION])
def test_slack_message_is_valid_block_kit(status: str, classification: dict[str, Any] | None) -> None:
    message = slack(enriched(status, classification=classification))
    assert_valid_block_kit(message)
    types = [b["type"] for b in message["blocks"]]
    assert types[:3] == ["header", "section", "section"]
    assert types[-1] == "context"
    fields = " ".join(f["text"] for f in message["blocks"][1]["fields"])
    assert status in fields and "HighErrorRate" in fields
    assert "Error rate above 5%" in message["blocks"][2]["text"]["text"]
    assert "`instance=api-1:8080`" in message["blocks"][-1]["elements"][0]["text"]
    assert f"[{status.upper()}] HighErrorRate" in message["text"]


def test_slack_adds_reasoning_and_recommendations_when_classified() -> None:
    plain = slack(enriched())
    classified = slack(enriched(classification=CLASSIFICATION))
    assert len(classified["blocks"]) == len(plain["blocks"]) + 2
    texts = [b["text"]["text"] for b in classified["blocks"] if b["type"] == "section" and "text" in b]
    assert any(CLASSIFICATION["reasoning"] in t and "87%" in t for t in texts)
    assert any("• Roll back release 1.4.2\n• Page the payments on-call" in t for t in texts)


@pytest.mark.parametrize(
    ("status", "label", "classified", "colour", "emoji"),
    [
        ("firing", "critical", None, "#E01E5A", ":rotating_light:"),
        ("firing", "warning", None, "#ECB22E", ":warning:"),
        ("firing", "info", None, "#36C5F0", ":information_source:"),
        ("firing", "something", None, "#ECB22E", ":warning:"),
        ("firing", "info", "critical", "#E01E5A", ":rotating_light:"),
        ("firing", "critical", "noise", "#36C5F0", ":information_source:"),
        ("resolved", "critical", None, "#2EB67D", ":white_check_mark:"),
        ("resolved", "info", "critical", "#2EB67D", ":white_check_mark:"),
    ],
)
def test_slack_colour_and_emoji_by_severity(
    status: str, label: str, classified: str | None, colour: str, emoji: str
) -> None:
    classification = {**CLASSIFICATION, "severity": classified} if classified else None
    message = slack(enriched(status, labels={"severity": label}, classification=classification))
    assert message["attachments"][0]["color"] == colour
    assert message["blocks"][0]["text"]["text"].startswith(emoji)
    assert message["text"].startswith(emoji)


def test_slack_respects_its_limits_for_huge_alerts() -> None:
    huge = enriched(
        labels={f"label_{i:03}": "v" * 100 for i in range(300)},
        annotations={"summary": "S" * 5000, "description": "D" * 10000},
        classification={**CLASSIFICATION, "reasoning": "R" * 5000, "recommendations": ["x" * 100] * 100},
    )
    huge = dataclasses.replace(huge, alert=dataclasses.replace(huge.alert, alert_name="N" * 400))
    message = slack(huge)
    assert_valid_block_kit(message)
    assert len(message["text"]) <= 3000


def test_slack_escapes_mrkdwn_control_characters() -> None:
    message = slack(enriched(annotations={"summary": "<!channel> p99 > 2s & rising"}))
    text = message["blocks"][2]["text"]["text"]
    assert "&lt;!channel&gt; p99 &gt; 2s &amp; rising" in text
    assert "<!channel>" not in json.dumps(message["blocks"])


# --- Rootly ---------------------------------------------------------------------------------


def rootly(alert: EnrichedAlert) -> dict[str, Any]:
    return format_payload(target(TargetFormat.ROOTLY), alert, JOB_ID)


@pytest.mark.parametrize(
    ("label", "classified", "expected"),
    [
        ("critical", None, "critical"),
        ("warning", None, "major"),
        ("info", None, "minor"),
        ("noise", None, "low"),
        ("unheard-of", None, "major"),
        (None, None, "major"),
        ("critical", "info", "minor"),
        ("info", "critical", "critical"),
        (None, "noise", "low"),
    ],
)
def test_rootly_severity_mapping(label: str | None, classified: str | None, expected: str) -> None:
    labels = {"severity": label} if label else {}
    classification = {**CLASSIFICATION, "severity": classified} if classified else None
    assert rootly(enriched(labels=labels, classification=classification))["severity"] == expected


@pytest.mark.parametrize(
    ("status", "rootly_status", "ended_at"),
    [("firing", "open", None), ("resolved", "resolved", ENDS_AT)],
)
def test_rootly_alert_fields(status: str, rootly_status: str, ended_at: str | None) -> None:
    alert = rootly(enriched(status, labels={"namespace": "payments", "team": "core"}))
    assert alert["title"] == "HighErrorRate: Error rate above 5%"
    assert alert["status"] == rootly_status
    assert alert["external_id"] == "a1b2c3d4e5f60718"
    assert alert["external_url"] == GENERATOR_URL
    assert alert["environment"] == "payments"
    assert alert["started_at"] == STARTS_AT
    assert alert["ended_at"] == ended_at
    assert alert["tags"] == [
        {"key": "alertname", "value": "HighErrorRate"},
        {"key": "namespace", "value": "payments"},
        {"key": "team", "value": "core"},
    ]


def test_rootly_without_namespace_has_no_environment() -> None:
    assert rootly(enriched(labels={}))["environment"] is None


@pytest.mark.parametrize("classification", [None, CLASSIFICATION])
def test_rootly_description_is_markdown_of_the_alert(classification: dict[str, Any] | None) -> None:
    description = rootly(
        enriched(annotations={"summary": "S1", "runbook_url": "https://rb"}, classification=classification)
    )["description"]
    assert description.startswith("**S1**")
    assert "- `instance`: `api-1:8080`" in description
    assert "- `runbook_url`: https://rb" in description
    assert f"[Source]({GENERATOR_URL})" in description
    if classification:
        assert CLASSIFICATION["reasoning"] in description
        assert "- Roll back release 1.4.2" in description
    else:
        assert "Classification" not in description


# --- generic webhook ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["firing", "resolved"])
@pytest.mark.parametrize("classification", [None, CLASSIFICATION])
def test_webhook_is_the_flat_alert(status: str, classification: dict[str, Any] | None) -> None:
    alert = enriched(status, classification=classification)
    payload = format_payload(target(TargetFormat.WEBHOOK), alert, JOB_ID)
    assert payload == {
        "alert_name": "HighErrorRate",
        "fingerprint": "a1b2c3d4e5f60718",
        "status": status,
        "labels": dict(alert.alert.labels),
        "annotations": dict(alert.alert.annotations),
        "starts_at": STARTS_AT,
        "ends_at": ENDS_AT if status == "resolved" else None,
        "generator_url": GENERATOR_URL,
        "classification": classification,
        "job_id": JOB_ID,
    }


# --- Alertmanager v4 envelope ---------------------------------------------------------------

AM_ENVELOPE_KEYS = {
    "receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations",
    "externalURL", "version", "groupKey", "truncatedAlerts",
}  # fmt: skip
AM_ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


@pytest.mark.parametrize(("status", "ends_at"), [("firing", GO_ZERO_TIME), ("resolved", ENDS_AT)])
@pytest.mark.parametrize("classification", [None, CLASSIFICATION])
def test_alertmanager_envelope(status: str, ends_at: str, classification: dict[str, Any] | None) -> None:
    alert = enriched(status, classification=classification)
    envelope = format_payload(target(TargetFormat.ALERTMANAGER), alert, JOB_ID)
    assert set(envelope) == AM_ENVELOPE_KEYS
    assert envelope["receiver"] == "alertmanager-test"
    assert envelope["status"] == status
    assert envelope["version"] == "4"
    assert envelope["externalURL"] == ""
    assert envelope["truncatedAlerts"] == 0
    assert envelope["groupLabels"] == {"alertname": "HighErrorRate"}
    assert envelope["groupKey"] == '{}:{alertname="HighErrorRate"}'
    assert envelope["commonLabels"] == dict(alert.alert.labels)
    assert envelope["commonAnnotations"] == dict(alert.alert.annotations)
    [sent] = envelope["alerts"]
    assert set(sent) == AM_ALERT_KEYS
    assert sent["status"] == status
    assert sent["startsAt"] == STARTS_AT
    assert sent["endsAt"] == ends_at
    assert sent["generatorURL"] == GENERATOR_URL
    assert sent["fingerprint"] == "a1b2c3d4e5f60718"


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_alertmanager_envelope_parses_back_to_the_same_alert(status: str) -> None:
    alert = enriched(status)
    envelope = format_payload(target(TargetFormat.ALERTMANAGER), alert, JOB_ID)
    [parsed] = parse_alertmanager(json.loads(json.dumps(envelope)))
    assert parsed.alert == alert.alert


def am_webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    """What Alertmanager sends: a group of two alerts, with its own receiver and URL."""
    return {
        "receiver": "team-payments",
        "status": "firing",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonAnnotations": {"runbook_url": "https://runbooks.example.com/checkout"},
        "externalURL": "https://alertmanager.example.com",
        "version": "4",
        "groupKey": '{}/{team="payments"}:{alertname="HighErrorRate", service="checkout"}',
        "truncatedAlerts": 2,
    }


def am_alert(status: str, instance: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "service": "checkout", "instance": instance},
        "annotations": {"summary": f"{instance} answers 5xx"},
        "startsAt": STARTS_AT,
        "endsAt": ENDS_AT if status == "resolved" else GO_ZERO_TIME,
        "generatorURL": GENERATOR_URL,
        "fingerprint": f"fp-{instance}",
    }


def test_an_alertmanager_alert_is_forwarded_in_the_envelope_it_came_in() -> None:
    sent = am_webhook(am_alert("resolved", "api-1"), am_alert("firing", "api-2"))
    target_ = target(TargetFormat.ALERTMANAGER)
    bodies = [format_payload(target_, a, JOB_ID) for a in parse_alertmanager(json.loads(json.dumps(sent)))]
    for body, alert in zip(bodies, sent["alerts"], strict=True):
        assert body == {
            **sent,
            "status": alert["status"],
            "alerts": [alert],
            "x-publishing": {"job_id": JOB_ID, "target": "alertmanager-test"},
        }


def test_the_forwarded_envelope_survives_the_job_message() -> None:
    [alert] = parse_alertmanager(am_webhook(am_alert("firing", "api-1")))
    carried = EnrichedAlert.from_dict(json.loads(json.dumps(alert.to_dict())))
    body = format_payload(target(TargetFormat.ALERTMANAGER), carried, JOB_ID)
    assert body["receiver"] == "team-payments"
    assert body["externalURL"] == "https://alertmanager.example.com"
