"""The Opsgenie Alert API v2 payloads: a create (``POST /v2/alerts``) for a firing alert, keyed
by the fingerprint as ``alias`` so Opsgenie de-duplicates it, and a close by that alias
(``POST /v2/alerts/{alias}/close?identifierType=alias``) for a resolved one. The target's URL
is the alerts endpoint (``https://api.opsgenie.com/v2/alerts``, or the EU one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.formatters.severity import BySeverity
from publishing.formatters.text import clip, summary_of
from publishing.targets import Target
from publishing.templates import title_and_text

# Opsgenie's documented field limits; a longer message is cut, not refused.
MESSAGE_MAX_CHARS = 130
DESCRIPTION_MAX_CHARS = 15000
ENTITY_MAX_CHARS = 512
MAX_TAGS = 20
TAG_MAX_CHARS = 50
DETAIL_VALUE_MAX_CHARS = 512
SOURCE = "alert-publishing"
# P1 (critical) to P5 (informational); an unknown severity is Opsgenie's default, P3.
PRIORITIES = BySeverity(critical="P1", error="P2", warning="P3", info="P5")


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    if not target.api_key:
        raise ValueError("an opsgenie target needs an api_key")
    alert = enriched.alert
    if alert.status is AlertStatus.RESOLVED:
        ended = format_time(alert.ends_at) if alert.ends_at is not None else "now"
        return {"source": SOURCE, "note": f"Resolved at {ended}."}
    summary = summary_of(alert)
    # Every create is a firing alert: the message says what, not the status.
    title, text = title_and_text(
        target, enriched, title=f"{alert.alert_name}: {summary}" if summary else alert.alert_name
    )
    details = {k: clip(v, DETAIL_VALUE_MAX_CHARS) for k, v in alert.labels.items()}
    details["starts_at"] = format_time(alert.starts_at)
    if alert.generator_url:
        details["generator_url"] = clip(alert.generator_url, DETAIL_VALUE_MAX_CHARS)
    entity = next((alert.labels[k] for k in ("instance", "job", "service") if alert.labels.get(k)), None)
    body: dict[str, Any] = {
        "message": clip(title, MESSAGE_MAX_CHARS),
        "alias": alert.fingerprint,
        "description": clip(text, DESCRIPTION_MAX_CHARS),
        "priority": PRIORITIES.of(enriched),
        "tags": [clip(f"{k}:{v}", TAG_MAX_CHARS) for k, v in sorted(alert.labels.items())][:MAX_TAGS],
        "details": details,
        "source": SOURCE,
    }
    if entity:
        body["entity"] = clip(entity, ENTITY_MAX_CHARS)
    return body


def request_url(target: Target, enriched: EnrichedAlert) -> str:
    """Where the request goes: the alerts endpoint, or the close by alias for a resolve."""
    alert = enriched.alert
    if alert.status is not AlertStatus.RESOLVED:
        return target.url
    alias = quote(alert.fingerprint, safe="")
    return f"{target.url.rstrip('/')}/{alias}/close?identifierType=alias"
