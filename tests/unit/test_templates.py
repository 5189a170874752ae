"""A target's title and text templates (``publishing.templates``): sandboxed, checked when the
targets file loads, rendered with the alert's fields by every format with a title or text;
and a target's own retry knobs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from publishing.alert import Alert, AlertStatus, Classification, EnrichedAlert, Severity
from publishing.errors import ConfigError, PermanentPublishError
from publishing.formatters import format_payload
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import Target
from publishing.templates import TemplateProblem, compile_template, context_of, render

ALERT = EnrichedAlert(
    Alert(
        fingerprint="abc123",
        alert_name="HighLatency",
        status=AlertStatus.FIRING,
        labels={"alertname": "HighLatency", "severity": "warning", "team": "payments"},
        annotations={"summary": "p99 above 2 s", "description": "Checkout is slow."},
        starts_at=datetime(2026, 6, 1, 8, 30, tzinfo=UTC),
    ),
    Classification(Severity.CRITICAL, 0.8, "Latency doubles every minute.", ("Scale out",)),
)
TEMPLATE = {
    "title": "{{ severity | upper }} {{ alert_name }} ({{ labels.team }})",
    "text": "{{ annotations.summary }}{% if classification %} | {{ classification.reasoning }}{% endif %}",
}
KINDS: dict[str, dict[str, Any]] = {
    "pagerduty": {"url": "https://events.pagerduty.com/v2/enqueue", "routing_key": "rk"},
    "slack": {"url": "https://hooks.slack.com/services/T/B/X"},
    "rootly": {"url": "https://api.rootly.com/v1/alerts", "api_token": "tok"},
    "msteams": {"url": "https://prod.logic.azure.com/workflows/1/invoke?sig=x"},
    "opsgenie": {"url": "https://api.opsgenie.com/v2/alerts", "api_key": "k"},
    "email": {"smtp": {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]}},
    "discord": {"url": "https://discord.com/api/webhooks/1/t"},
    "webhook": {"url": "https://hooks.example.com/a"},
}
TITLE = "CRITICAL HighLatency (payments)"
TEXT = "p99 above 2 s | Latency doubles every minute."


def target(kind: str, template: dict[str, str] | None = TEMPLATE) -> Target:
    raw: dict[str, Any] = {"name": f"{kind}-t", "type": kind, **KINDS[kind]}
    if template is not None:
        raw["template"] = template
    return parse_target(raw)


def test_the_context_holds_the_alerts_fields() -> None:
    context = context_of(ALERT)
    assert context["labels"]["team"] == "payments"
    assert context["annotations"]["summary"] == "p99 above 2 s"
    assert (context["status"], context["severity"], context["alert_name"]) == (
        "firing",
        "critical",
        "HighLatency",
    )
    assert (context["fingerprint"], context["starts_at"]) == ("abc123", "2026-06-01T08:30:00Z")
    assert context["classification"]["confidence"] == 0.8


def test_a_target_without_templates_renders_nothing() -> None:
    rendered = render(target("webhook", template=None), ALERT)
    assert (rendered.title, rendered.text) == (None, None)


def test_a_missing_label_renders_empty_rather_than_failing() -> None:
    rendered = render(target("discord", {"title": "[{{ labels.nope }}] {{ alert_name }}"}), ALERT)
    assert rendered.title == "[] HighLatency"


# Where each format puts the rendered title and text.
PLACES = {
    "pagerduty": lambda b: (b["payload"]["summary"], None),
    "slack": lambda b: (b["text"], b["blocks"][2]["text"]["text"]),
    "rootly": lambda b: (b["title"], b["description"]),
    "msteams": lambda b: (b["attachments"][0]["content"]["body"][0]["text"], b["attachments"][0]["content"]["body"][1]["text"]),
    "opsgenie": lambda b: (b["message"], b["description"]),
    "email": lambda b: (b["subject"], b["text"].split("\n")[2]),
    "discord": lambda b: (b["embeds"][0]["title"], b["embeds"][0]["description"]),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(PLACES))
def test_every_format_with_a_title_or_text_uses_the_templates(kind: str) -> None:
    title, text = PLACES[kind](format_payload(target(kind), ALERT, "job"))
    assert title == TITLE
    assert text in (TEXT, None)


def test_the_slack_header_takes_the_title_too() -> None:
    body = format_payload(target("slack"), ALERT, "job")
    assert body["blocks"][0]["text"]["text"] == TITLE
    assert body["attachments"][0]["fallback"] == TITLE


def test_formats_without_title_or_text_carry_the_alert_as_it_is() -> None:
    plain = format_payload(target("webhook", template=None), ALERT, "job")
    assert format_payload(target("webhook"), ALERT, "job") == plain


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("{{ alert_name ", 1),
        ("ok\n{% if %}", 2),
        ("a\nb\n{% for x in labels %}", 3),
        ("{{ x | nosuchfilter }}", 1),
    ],
)
def test_a_syntax_error_names_its_line(source: str, line: int) -> None:
    with pytest.raises(TemplateProblem) as caught:
        compile_template(source)
    assert caught.value.lineno == line
    assert f"line {line}" in str(caught.value)


def test_a_bad_template_is_refused_when_the_targets_file_loads_naming_target_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target(
            {"name": "ops", "type": "webhook", "url": "https://h.example/", "template": {"title": "x\n{{ }}"}}
        )
    assert str(caught.value).startswith("target 'ops': template.title: syntax error at line 2")


@pytest.mark.parametrize(
    "source",
    [
        "{{ labels.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__base__.__subclasses__() }}",
        "{{ context_of.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_to_reach_python_internals(source: str) -> None:
    # Refused at render time, for every alert alike: a permanent failure, never a leak.
    with pytest.raises(PermanentPublishError):
        format_payload(target("discord", {"title": source}), ALERT, "job")


def test_a_template_error_at_render_time_is_permanent_and_names_the_target() -> None:
    broken = target("discord", {"text": "{{ 1 / 0 }}"})
    with pytest.raises(PermanentPublishError, match="discord-t"):
        format_payload(broken, ALERT, "job")


def test_rendering_a_resolved_alert_sees_its_status() -> None:
    resolved = replace(ALERT, alert=replace(ALERT.alert, status=AlertStatus.RESOLVED))
    assert render(target("discord", {"title": "{{ status }}"}), resolved).title == "resolved"


# --- per-target retry knobs ------------------------------------------------------------------


def test_a_targets_retry_knobs_override_the_priority_policy() -> None:
    base = RetryPolicy(max_retries=5, base_s=1.0, max_backoff_s=60.0, jitter_s=1.0)
    hook = parse_target(
        {
            "name": "h",
            "type": "webhook",
            "url": "https://h.example/",
            "max_retries": 1,
            "retry_max_backoff_s": 5,
        }
    )
    assert hook.retry_policy(base) == RetryPolicy(max_retries=1, base_s=1.0, max_backoff_s=5.0, jitter_s=1.0)
    assert hook.to_public_dict()["max_retries"] == 1


def test_a_target_without_knobs_keeps_the_policy() -> None:
    base = RetryPolicy(max_retries=3)
    assert target("webhook", template=None).retry_policy(base) == base
