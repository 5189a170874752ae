"""The Discord webhook payload: a one-line ``content`` and one embed coloured by severity,
with the alert's facts as fields, clipped to Discord's documented limits. Mentions are
disabled: a label that reads ``@everyone`` pings nobody."""

from __future__ import annotations

from typing import Any

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.formatters.severity import BySeverity, severity_name
from publishing.formatters.text import alert_line, clip, group_title, listing_cap
from publishing.grouping import AlertGroup
from publishing.targets import Target
from publishing.templates import title_and_text

# Discord's limits: past any of them the whole message is refused with a 400.
CONTENT_MAX_CHARS = 2000
TITLE_MAX_CHARS = 256
DESCRIPTION_MAX_CHARS = 4096
FIELD_NAME_MAX_CHARS = 256
FIELD_VALUE_MAX_CHARS = 1024
MAX_FIELDS = 25
FOOTER_MAX_CHARS = 2048
# Embed colours (RGB as an integer) by severity; a resolved alert is green.
RESOLVED_COLOUR = 0x2EB67D
COLOURS = BySeverity(critical=0xE01E5A, warning=0xECB22E, info=0x36C5F0, resolved=RESOLVED_COLOUR)


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    resolved = alert.status is AlertStatus.RESOLVED
    title, text = title_and_text(target, enriched)
    fields = [
        _field("Status", alert.status.value),
        _field("Severity", severity_name(enriched)),
        *(_field(k, v) for k, v in sorted(alert.labels.items())),
    ]
    embed: dict[str, Any] = {
        "title": clip(title, TITLE_MAX_CHARS),
        "description": clip(text, DESCRIPTION_MAX_CHARS),
        "color": COLOURS.of(enriched),
        "fields": fields[:MAX_FIELDS],
        "timestamp": format_time(alert.ends_at if resolved and alert.ends_at else alert.starts_at),
        "footer": {"text": clip(f"fingerprint {alert.fingerprint}", FOOTER_MAX_CHARS)},
    }
    if alert.generator_url.startswith(("http://", "https://")):
        embed["url"] = alert.generator_url
    return {
        "content": clip(title, CONTENT_MAX_CHARS),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


def _field(name: str, value: str) -> dict[str, Any]:
    return {
        "name": clip(name, FIELD_NAME_MAX_CHARS),
        "value": clip(value, FIELD_VALUE_MAX_CHARS) or "-",
        "inline": True,
    }


def build_group(target: Target, group: AlertGroup, job_id: str) -> dict[str, Any]:
    """Many alerts in one embed: the counts as its title, one line an alert (firing first)
    in its description up to ``group_max_alerts`` or Discord's 4,096 characters, then "+k more"."""
    alerts = group.members
    title = group_title(alerts, group.group_labels)
    # Firing alerts of no listed severity leave the embed green, as a resolved group's.
    colour = COLOURS.worst_firing(alerts, ("critical", "error", "warning", "info"), RESOLVED_COLOUR)
    cap = listing_cap(target, len(alerts))
    lines: list[str] = []
    # Room kept for the "+k more" line.
    room = DESCRIPTION_MAX_CHARS - 20
    for a in alerts[:cap]:
        line = clip(alert_line(a), FIELD_VALUE_MAX_CHARS)
        if sum(len(x) + 1 for x in lines) + len(line) > room:
            break
        lines.append(line)
    if len(lines) < len(alerts):
        lines.append(f"+{len(alerts) - len(lines)} more")
    embed = {
        "title": clip(title, TITLE_MAX_CHARS),
        "description": "\n".join(lines),
        "color": colour,
    }
    return {"content": clip(title, CONTENT_MAX_CHARS), "embeds": [embed], "allowed_mentions": {"parse": []}}
