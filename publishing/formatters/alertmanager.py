"""The Alertmanager-format payload: a version-4 webhook envelope holding exactly one alert,
so that anything that already receives Alertmanager webhooks can receive our jobs. An alert
that came through ``/webhook`` goes out in the envelope it came in, its group fields unchanged;
an enriched alert gets one built from itself (docs/formats.md, "alertmanager")."""

from __future__ import annotations

import json
from typing import Any

from publishing.alert import GO_ZERO_TIME, EnrichedAlert, format_time
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
    sent = {
        "status": alert.status.value,
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(alert.ends_at) if alert.ends_at else GO_ZERO_TIME,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }
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
