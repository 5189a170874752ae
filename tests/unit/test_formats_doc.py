"""docs/formats.md, the receivers' guide: each example body is what the real formatter builds
for the documented alert, and a signature made by the HTTP publisher verifies with the
Standard Webhooks reference library (``standardwebhooks``)."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from publishing.adapters.http import HttpPublisher
from publishing.alert import Alert, AlertStatus, Classification, EnrichedAlert, Severity
from publishing.errors import TransientPublishError
from publishing.formatters import format_payload
from publishing.target_config import parse_target
from publishing.targets import Target, TargetFormat

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
README = DOC.parents[1] / "README.md"
JOB_ID = "9b2f1c4e-7d3a-4f5b-8e21-0c6d5a4b3f10"
# The alert every example is built from; docs/formats.md says so in words.
ALERT = EnrichedAlert(
    Alert(
        fingerprint="a1b2c3d4e5f60718",
        alert_name="HighErrorRate",
        status=AlertStatus.FIRING,
        labels={"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "env": "prod"},
        annotations={
            "summary": "checkout 5xx above 5% for 10 minutes",
            "description": "The checkout service answers 7.2% of requests with a 5xx.",
        },
        starts_at=datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
        generator_url="https://prometheus.example.com/graph?g0.expr=job%3Acheckout_errors%3Aratio5m",
    ),
    Classification(
        Severity.CRITICAL,
        0.92,
        "Error rate is 7x the baseline and rising.",
        ("Roll back the 09:10 deploy of checkout",),
    ),
)
TARGETS = {
    TargetFormat.PAGERDUTY: {"type": "pagerduty", "url": "https://events.pagerduty.com/v2/enqueue", "routing_key": "R0UT1NGKEY"},
    TargetFormat.SLACK: {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/XXXX"},
    TargetFormat.ROOTLY: {"type": "rootly", "url": "https://api.rootly.com/v1/alerts", "api_token": "t0ken"},
    TargetFormat.WEBHOOK: {"type": "webhook", "url": "https://hooks.example.com/alerts"},
    TargetFormat.ALERTMANAGER: {"type": "webhook", "format": "alertmanager", "url": "https://hooks.example.com/am"},
    TargetFormat.MSTEAMS: {"type": "msteams", "url": "https://prod-00.westeurope.logic.azure.com/workflows/0a1b/triggers/manual/paths/invoke?sig=S1G"},
    TargetFormat.OPSGENIE: {"type": "opsgenie", "url": "https://api.opsgenie.com/v2/alerts", "api_key": "G3NIEKEY"},
    TargetFormat.EMAIL: {"type": "email", "smtp": {"host": "smtp.example.com", "from": "alerts@example.com", "to": ["oncall@example.com"]}},
    TargetFormat.DISCORD: {"type": "discord", "url": "https://discord.com/api/webhooks/123/T0KEN"},
}  # fmt: skip
# A Standard Webhooks secret: ``whsec_`` and base64 key bytes.
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def target(target_format: TargetFormat, **extra: Any) -> Target:
    return parse_target({"name": f"{target_format.value}-example", **TARGETS[target_format], **extra})


def example(target_format: TargetFormat) -> Any:
    return format_payload(target(target_format), ALERT, JOB_ID)


def documented_examples() -> dict[str, Any]:
    """The JSON block after each ``<!-- example: FORMAT -->`` marker of docs/formats.md."""
    found = re.findall(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", DOC.read_text(), re.S)
    return {name: json.loads(block) for name, block in found}


@pytest.mark.parametrize("target_format", list(TargetFormat), ids=lambda f: f.value)
def test_each_documented_body_is_what_the_formatter_builds(target_format: TargetFormat) -> None:
    built = example(target_format)
    documented = documented_examples()
    assert target_format.value in documented, f"docs/formats.md has no example for {target_format.value}"
    assert documented[target_format.value] == built, (
        f"docs/formats.md's {target_format.value} example is stale; the formatter builds:\n"
        + json.dumps(built, indent=2, ensure_ascii=False)
    )


# What Alertmanager sent for the documented alert: its envelope is forwarded unchanged.
ALERTMANAGER_ENVELOPE = {
    "receiver": "publishing",
    "externalURL": "https://alertmanager.example.com",
    "groupKey": '{}/{team="payments"}:{alertname="HighErrorRate"}',
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "service": "checkout", "env": "prod"},
    "commonAnnotations": {},
    "truncatedAlerts": 0,
}


def test_the_forwarded_alertmanager_body_is_documented() -> None:
    forwarded = dataclasses.replace(ALERT, classification=None, envelope=ALERTMANAGER_ENVELOPE)
    built = format_payload(target(TargetFormat.ALERTMANAGER), forwarded, JOB_ID)
    assert documented_examples().get("alertmanager_forwarded") == built, (
        "docs/formats.md's alertmanager_forwarded example is stale; the formatter builds:\n"
        + json.dumps(built, indent=2, ensure_ascii=False)
    )


def test_the_guide_documents_every_header_and_is_linked_from_the_readme() -> None:
    text = DOC.read_text()
    for header in ("Idempotency-Key", "webhook-id", "webhook-timestamp", "webhook-signature"):
        assert f"`{header}`" in text, header
    assert "(docs/formats.md)" in README.read_text()


class CapturingSession(requests.Session):
    """Keeps what the publisher sends, then fails as an unreachable host would: no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    def post(self, url: str | bytes, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        self.sent.append((data, dict(kwargs["headers"])))
        raise requests.ConnectionError("not sent: captured")


def signed_request(secret: str = SIGNING_SECRET) -> tuple[bytes, dict[str, str]]:
    session = CapturingSession()
    # The real clock: the reference library refuses a timestamp 5 minutes from its own.
    publisher = HttpPublisher(session, default_timeout_s=5.0)
    with pytest.raises(TransientPublishError):
        publisher.publish(target(TargetFormat.WEBHOOK, signing_secret=secret), ALERT, JOB_ID)
    [(body, headers)] = session.sent
    return body, headers


def test_a_signature_of_the_publisher_verifies_with_the_reference_library() -> None:
    body, headers = signed_request()
    assert headers["webhook-id"] == headers["Idempotency-Key"] == JOB_ID
    assert Webhook(SIGNING_SECRET).verify(body, headers) == json.loads(body)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body + b" ", headers), id="body-changed"),
        pytest.param(lambda body, headers: (body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}), id="timestamp-changed"),
        pytest.param(lambda body, headers: (body, {**headers, "webhook-id": "other"}), id="id-changed"),
    ],
)  # fmt: skip
def test_a_tampered_request_does_not_verify(tamper: Any) -> None:
    body, headers = tamper(*signed_request())
    with pytest.raises(WebhookVerificationError):
        Webhook(SIGNING_SECRET).verify(body, headers)


def test_a_signature_made_with_another_secret_does_not_verify() -> None:
    body, headers = signed_request("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=")
    with pytest.raises(WebhookVerificationError):
        Webhook(SIGNING_SECRET).verify(body, headers)
