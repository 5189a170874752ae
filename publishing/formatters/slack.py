"""The Slack incoming-webhook payload: Block Kit blocks with a plain-text fallback, coloured
and marked with an emoji by severity, clipped to Slack's documented limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.formatters.text import clip, summary_of
from publishing.targets import Target

# Slack's limits: a longer text or an extra block gets the whole message rejected.
HEADER_MAX_CHARS = 150
SECTION_MAX_CHARS = 3000
FIELD_MAX_CHARS = 2000
CONTEXT_MAX_ELEMENTS = 10
MAX_BLOCKS = 50
TEXT_MAX_CHARS = 3000

# Looks by severity: (attachment colour, emoji). Unknown severities look like warnings.
RESOLVED_LOOK = ("#2EB67D", ":white_check_mark:")
LOOKS: Mapping[str, tuple[str, str]] = {
    "critical": ("#E01E5A", ":rotating_light:"),
    "error": ("#E01E5A", ":rotating_light:"),
    "warning": ("#ECB22E", ":warning:"),
    "info": ("#36C5F0", ":information_source:"),
    "noise": ("#36C5F0", ":information_source:"),
}
DEFAULT_LOOK = LOOKS["warning"]


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    severity = (enriched.severity or "").lower()
    resolved = alert.status is AlertStatus.RESOLVED
    colour, emoji = RESOLVED_LOOK if resolved else LOOKS.get(severity, DEFAULT_LOOK)
    status = alert.status.value.upper()
    summary = summary_of(alert) or alert.alert_name

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(f"{emoji} [{status}] {alert.alert_name}", HEADER_MAX_CHARS),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Status*\n{alert.status.value}", FIELD_MAX_CHARS),
                _mrkdwn(f"*Severity*\n{_escape(severity or 'unknown')}", FIELD_MAX_CHARS),
                _mrkdwn(f"*Alert*\n{_escape(alert.alert_name)}", FIELD_MAX_CHARS),
            ],
        },
        {"type": "section", "text": _mrkdwn(_body(alert.annotations, summary), SECTION_MAX_CHARS)},
    ]
    classification = enriched.classification
    if classification is not None and classification.reasoning:
        text = f"*Classification* ({classification.confidence:.0%} confident)\n{_escape(classification.reasoning)}"
        blocks.append({"type": "section", "text": _mrkdwn(text, SECTION_MAX_CHARS)})
    if classification is not None and classification.recommendations:
        items = "\n".join(f"• {_escape(r)}" for r in classification.recommendations)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Recommendations*\n{items}", SECTION_MAX_CHARS)})
    if alert.labels:
        labels = "  ".join(f"`{_escape(k)}={_escape(v)}`" for k, v in sorted(alert.labels.items()))
        blocks.append({"type": "context", "elements": [_mrkdwn(labels, SECTION_MAX_CHARS)]})

    footer = [_mrkdwn(f"fingerprint `{_escape(alert.fingerprint)}`", SECTION_MAX_CHARS)]
    footer.append(_mrkdwn(f"started {format_time(alert.starts_at)}", SECTION_MAX_CHARS))
    if alert.ends_at is not None:
        footer.append(_mrkdwn(f"ended {format_time(alert.ends_at)}", SECTION_MAX_CHARS))
    if alert.generator_url:
        footer.append(_mrkdwn(f"<{_escape(alert.generator_url)}|source>", SECTION_MAX_CHARS))

    text = clip(f"{emoji} [{status}] {_escape(alert.alert_name)}: {_escape(summary)}", TEXT_MAX_CHARS)
    return {
        "text": text,
        "blocks": blocks[:MAX_BLOCKS],
        # Only an attachment draws the colour bar; it carries the footer so it is never empty.
        "attachments": [
            {
                "color": colour,
                "fallback": text,
                "blocks": [{"type": "context", "elements": footer[:CONTEXT_MAX_ELEMENTS]}],
            }
        ],
    }


def _body(annotations: Mapping[str, str], summary: str) -> str:
    description = annotations.get("description", "")
    if description and description != summary:
        return f"*{_escape(summary)}*\n{_escape(description)}"
    return f"*{_escape(summary)}*"


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
