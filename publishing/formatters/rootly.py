"""The Rootly alert payload: a title, a markdown description, Rootly's severity names and the
alert's labels as ``{"key", "value"}`` tags (the shape Rootly uses for alert labels)."""

from __future__ import annotations

from typing import Any

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.formatters.severity import BySeverity
from publishing.formatters.text import clip, summary_of
from publishing.targets import Target

TITLE_MAX_CHARS = 255
SEVERITIES = BySeverity(critical="critical", error="major", warning="major", info="minor", noise="low")


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    summary = summary_of(alert)
    title = f"{alert.alert_name}: {summary}" if summary else alert.alert_name
    return {
        "title": clip(title, TITLE_MAX_CHARS),
        "description": _description(enriched),
        "severity": SEVERITIES.of(enriched),
        "status": "resolved" if alert.status is AlertStatus.RESOLVED else "open",
        "tags": [{"key": k, "value": v} for k, v in sorted(alert.labels.items())],
        "environment": alert.labels.get("namespace"),
        "external_id": alert.fingerprint,
        "external_url": alert.generator_url or None,
        "started_at": format_time(alert.starts_at),
        "ended_at": format_time(alert.ends_at) if alert.ends_at else None,
    }


def _description(enriched: EnrichedAlert) -> str:
    alert = enriched.alert
    lines: list[str] = []
    if alert.annotations.get("summary"):
        lines += [f"**{alert.annotations['summary']}**", ""]
    if alert.annotations.get("description"):
        lines += [alert.annotations["description"], ""]
    lines.append(f"**Status:** {alert.status.value} · **Severity:** {enriched.severity or 'unknown'}")
    lines.append(f"**Started:** {format_time(alert.starts_at)}")
    if alert.ends_at is not None:
        lines.append(f"**Ended:** {format_time(alert.ends_at)}")
    classification = enriched.classification
    if classification is not None:
        lines += [
            "",
            f"**Classification:** {classification.severity.value} ({classification.confidence:.0%} confident)",
        ]
        if classification.reasoning:
            lines.append(classification.reasoning)
        if classification.recommendations:
            lines += ["", "**Recommendations**"] + [f"- {r}" for r in classification.recommendations]
    other = {k: v for k, v in alert.annotations.items() if k not in ("summary", "description")}
    if other:
        lines += ["", "**Annotations**"] + [f"- `{k}`: {v}" for k, v in sorted(other.items())]
    if alert.labels:
        lines += ["", "**Labels**"] + [f"- `{k}`: `{v}`" for k, v in sorted(alert.labels.items())]
    if alert.generator_url:
        lines += ["", f"[Source]({alert.generator_url})"]
    return "\n".join(lines)
