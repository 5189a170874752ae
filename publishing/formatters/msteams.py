"""The Microsoft Teams payload for a Workflows incoming webhook: a ``message`` with one
Adaptive Card (schema 1.4), coloured by severity, with the alert's facts and a link to its
source."""

from __future__ import annotations

from typing import Any

from publishing.alert import EnrichedAlert, format_time
from publishing.formatters.severity import BySeverity, severity_name
from publishing.formatters.text import alert_line, clip, counts, group_title, listing_cap
from publishing.grouping import AlertGroup
from publishing.targets import Target
from publishing.templates import title_and_text

CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# A Teams message is refused past about 28 KB; these keep a card well under it.
TITLE_MAX_CHARS = 256
TEXT_MAX_CHARS = 8000
FACT_MAX_CHARS = 512
MAX_LABEL_FACTS = 20
# Adaptive Card colour names by severity (a resolved alert is ``Good``).
COLOURS = BySeverity(critical="Attention", warning="Warning", info="Accent", resolved="Good")


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    title, text = title_and_text(target, enriched)
    facts = [
        _fact("Status", alert.status.value),
        _fact("Severity", severity_name(enriched)),
        _fact("Started", format_time(alert.starts_at)),
    ]
    if alert.ends_at is not None:
        facts.append(_fact("Ended", format_time(alert.ends_at)))
    facts += [_fact(k, v) for k, v in sorted(alert.labels.items())[:MAX_LABEL_FACTS]]
    body: list[dict[str, Any]] = [
        _heading(title, COLOURS.of(enriched)),
        {"type": "TextBlock", "text": clip(text, TEXT_MAX_CHARS), "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    if alert.generator_url:
        return _message(body, [{"type": "Action.OpenUrl", "title": "Source", "url": alert.generator_url}])
    return _message(body)


def _fact(title: str, value: str) -> dict[str, str]:
    return {"title": clip(title, FACT_MAX_CHARS), "value": clip(value, FACT_MAX_CHARS)}


def _heading(title: str, colour: str) -> dict[str, Any]:
    return {
        "type": "TextBlock",
        "text": clip(title, TITLE_MAX_CHARS),
        "size": "Large",
        "weight": "Bolder",
        "color": colour,
        "wrap": True,
    }


def _message(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The webhook's ``message``: one Adaptive Card of ``body`` and, where given, ``actions``."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


# A grouped card's alert lines; the card stays well under Teams' 28 KB.
GROUP_MAX_LISTED = 50


def build_group(target: Target, group: AlertGroup, job_id: str) -> dict[str, Any]:
    """Many alerts in one card: the counts and group labels, one line an alert (firing
    first) up to ``group_max_alerts`` (at most 50), then "+k more"."""
    alerts = group.members
    firing, _ = counts(alerts)
    colour = COLOURS.worst_firing(alerts, ("critical", "error", "warning"), "Accent" if firing else "Good")
    cap = listing_cap(target, GROUP_MAX_LISTED)
    body: list[dict[str, Any]] = [
        _heading(group_title(alerts, group.group_labels), colour),
        *(
            {
                "type": "TextBlock",
                "text": clip(alert_line(a), FACT_MAX_CHARS),
                "wrap": True,
                "spacing": "None",
            }
            for a in alerts[:cap]
        ),
    ]
    if len(alerts) > cap:
        body.append(
            {"type": "TextBlock", "text": f"+{len(alerts) - cap} more", "isSubtle": True, "wrap": True}
        )
    return _message(body)
