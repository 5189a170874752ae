"""The Alertmanager-format payload: a version-4 webhook envelope holding exactly one alert,
so that anything that already receives Alertmanager webhooks can receive our jobs. An alert
that came through ``/webhook`` goes out in the envelope it came in, its group fields unchanged;
an enriched alert gets one built from itself (docs/formats.md, "alertmanager")."""

from __future__ import annotations

import json
from typing import Any

from publishing.alert import GO_ZERO_TIME, EnrichedAlert, format_time
from publishing.grouping import AlertGroup
from publishing.targets import Target

# Our one addition to a forwarded envelope; a receiver that reads only Alertmanager's
# fields ignores it.
EXTRA_FIELD = "x-publishing"
_ORDER = (
    "receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations",
    "externalURL", "version", "groupKey", "truncatedAlerts",
)  # fmt: skip


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    labels = dict(alert.labels)
    annotations = dict(alert.annotations)
    sent = _sent(enriched)
    if enriched.envelope is not None:
        body = {**enriched.envelope, "status": alert.status.value, "alerts": [sent], "version": "4"}
        # Alertmanager's own order, then ours.
        ordered = {name: body[name] for name in _ORDER if name in body}
        return {**ordered, EXTRA_FIELD: {"job_id": job_id, "target": target.name}}
    return {
        "receiver": target.name,
        "status": alert.status.value,
        "alerts": [sent],
        "groupLabels": {"alertname": alert.alert_name},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "version": "4",
        # Alertmanager's form, route matchers then group labels; json.dumps quotes like Go's %q.
        "groupKey": f"{{}}:{{alertname={json.dumps(alert.alert_name)}}}",
        "truncatedAlerts": 0,
    }


def build_group(target: Target, group: AlertGroup, job_id: str) -> dict[str, Any]:
    """A group in one version-4 envelope, as Alertmanager groups: every alert in ``alerts``,
    the group's labels as ``groupLabels``, the labels all alerts share as ``commonLabels``."""
    sent = [_sent(a) for a in group.members]
    common = dict(sent[0]["labels"])
    for alert in sent[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    firing = any(a["status"] == "firing" for a in sent)
    group_labels = {k: v for k, v in group.group_labels.items() if v}
    matchers = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(group_labels.items()))
    return {
        "receiver": target.name,
        "status": "firing" if firing else "resolved",
        "alerts": sent,
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "version": "4",
        "groupKey": f"{{}}:{{{matchers}}}",
        "truncatedAlerts": 0,
        EXTRA_FIELD: {"job_id": job_id, "target": target.name},
    }


def _sent(enriched: EnrichedAlert) -> dict[str, Any]:
    alert = enriched.alert
    return {
        "status": alert.status.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(alert.ends_at) if alert.ends_at else GO_ZERO_TIME,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }
