"""The Slack incoming-webhook payload: Block Kit blocks with a plain-text fallback, coloured
and marked with an emoji by severity, clipped to Slack's documented limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.formatters.severity import BySeverity, severity_name
from publishing.formatters.text import clip, counts, group_title, listing_cap, summary_of
from publishing.grouping import AlertGroup
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
LOOKS = BySeverity(
    critical=("#E01E5A", ":rotating_light:"),
    warning=("#ECB22E", ":warning:"),
    info=("#36C5F0", ":information_source:"),
    resolved=RESOLVED_LOOK,
)


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    colour, emoji = LOOKS.of(enriched)
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
                _mrkdwn(f"*Severity*\n{_escape(severity_name(enriched))}", FIELD_MAX_CHARS),
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


# A grouped message's lines: one an alert, packed into sections, clipped so a long summary
# cannot push the others out.
GROUP_LINE_MAX_CHARS = 300
# Header, group labels, and the "+k more" context take three of Slack's 50 blocks.
GROUP_LIST_BLOCKS = MAX_BLOCKS - 3


def build_group(target: Target, group: AlertGroup, job_id: str) -> dict[str, Any]:
    """Many alerts in one message: a header with the counts, the group's labels, one line an
    alert (firing first) up to ``group_max_alerts`` or what Slack's blocks hold, then "+k more"."""
    alerts = group.members
    firing, _ = counts(alerts)
    worst = max(
        (LOOKS.named(a.severity) for a in alerts if a.alert.status is AlertStatus.FIRING),
        key=_rank,
        default=RESOLVED_LOOK,
    )
    colour, emoji = worst
    title = group_title(alerts, group.group_labels)
    lines = [_group_line(a) for a in alerts]
    sections: list[str] = []
    listed = 0
    cap = listing_cap(target, len(lines))
    for line in lines[:cap]:
        if sections and len(sections[-1]) + 1 + len(line) <= SECTION_MAX_CHARS:
            sections[-1] += "\n" + line
        elif len(sections) < GROUP_LIST_BLOCKS:
            sections.append(line)
        else:
            break
        listed += 1
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(f"{emoji} {title}", HEADER_MAX_CHARS), "emoji": True},
        },
        *({"type": "section", "text": _mrkdwn(s, SECTION_MAX_CHARS)} for s in sections),
    ]
    if listed < len(alerts):
        more = f"+{len(alerts) - listed} more"
        blocks.append({"type": "context", "elements": [_mrkdwn(more, SECTION_MAX_CHARS)]})
    text = clip(f"{emoji} {_escape(title)}", TEXT_MAX_CHARS)
    footer = f"{firing} firing of {len(alerts)}" if firing else f"{len(alerts)} resolved"
    return {
        "text": text,
        "blocks": blocks,
        "attachments": [
            {
                "color": colour,
                "fallback": text,
                "blocks": [{"type": "context", "elements": [_mrkdwn(footer, SECTION_MAX_CHARS)]}],
            }
        ],
    }


def _group_line(enriched: EnrichedAlert) -> str:
    alert = enriched.alert
    emoji = LOOKS.of(enriched)[1]
    summary = summary_of(alert)
    line = f"{emoji} *{_escape(alert.alert_name)}*" + (f": {_escape(summary)}" if summary else "")
    return clip(line, GROUP_LINE_MAX_CHARS - len(alert.fingerprint) - 3) + f" `{_escape(alert.fingerprint)}`"


_SEVERITY_ORDER = [LOOKS.info, LOOKS.warning, LOOKS.critical]


def _rank(look: tuple[str, str]) -> int:
    return _SEVERITY_ORDER.index(look) if look in _SEVERITY_ORDER else 1
