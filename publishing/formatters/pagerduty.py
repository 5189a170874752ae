"""The PagerDuty Events API v2 payload: a ``trigger`` for a firing alert, a ``resolve`` for a
resolved one, both keyed by the alert's fingerprint so PagerDuty pairs them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from publishing.alert import AlertStatus, EnrichedAlert, format_time
from publishing.formatters.severity import BySeverity
from publishing.formatters.text import summary_of
from publishing.targets import Target

SUMMARY_MAX_CHARS = 1024  # PagerDuty rejects a longer payload.summary
DEFAULT_SOURCE = "alert-publishing"
SEVERITIES = BySeverity(critical="critical", error="error", warning="warning", info="info")
# Annotation name -> link text, in the order the links are listed.
LINK_ANNOTATIONS: dict[str, str] = {
    "runbook_url": "Runbook",
    "runbook": "Runbook",
    "dashboard_url": "Dashboard",
    "dashboard": "Dashboard",
    "grafana_url": "Grafana",
}


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    if not target.routing_key:
        raise ValueError("a pagerduty target needs a routing_key")
    alert = enriched.alert
    event: dict[str, Any] = {
        "routing_key": target.routing_key,
        "event_action": "resolve" if alert.status is AlertStatus.RESOLVED else "trigger",
        "dedup_key": alert.fingerprint,
    }
    if alert.status is AlertStatus.RESOLVED:
        # A resolve needs only the key pair; PagerDuty ignores anything else in it.
        return event
    details: dict[str, Any] = {"labels": dict(alert.labels), "annotations": dict(alert.annotations)}
    if enriched.classification is not None:
        details["classification"] = enriched.classification.to_dict()
    event["payload"] = {
        "summary": _summary(enriched)[:SUMMARY_MAX_CHARS],
        "source": next(
            (alert.labels[k] for k in ("instance", "job", "service") if alert.labels.get(k)),
            DEFAULT_SOURCE,
        ),
        "severity": SEVERITIES.of(enriched),
        "timestamp": format_time(alert.starts_at),
        "custom_details": details,
    }
    links = _links(alert.annotations)
    if links:
        event["links"] = links
    if alert.generator_url:
        event["client"] = urlsplit(alert.generator_url).netloc or DEFAULT_SOURCE
        event["client_url"] = alert.generator_url
    return event


def _summary(enriched: EnrichedAlert) -> str:
    return summary_of(enriched.alert) or enriched.alert.alert_name


def _links(annotations: Mapping[str, str]) -> list[dict[str, str]]:
    links: list[dict[str, str]] = []
    seen: set[str] = set()
    for name, text in LINK_ANNOTATIONS.items():
        href = annotations.get(name, "").strip()
        # PagerDuty wants an absolute URL; a runbook written as prose stays in custom_details.
        if href.startswith(("http://", "https://")) and href not in seen:
            seen.add(href)
            links.append({"href": href, "text": text})
    return links
