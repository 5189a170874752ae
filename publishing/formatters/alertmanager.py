"""The Alertmanager-format payload: a version-4 webhook envelope holding exactly one alert,
so that anything that already receives Alertmanager webhooks can receive our jobs."""

from __future__ import annotations

import json
from typing import Any

from publishing.alert import GO_ZERO_TIME, EnrichedAlert, format_time
from publishing.targets import Target


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    labels = dict(alert.labels)
    annotations = dict(alert.annotations)
    return {
        "receiver": target.name,
        "status": alert.status.value,
        "alerts": [
            {
                "status": alert.status.value,
                "labels": labels,
                "annotations": annotations,
                "startsAt": format_time(alert.starts_at),
                "endsAt": format_time(alert.ends_at) if alert.ends_at else GO_ZERO_TIME,
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
        ],
        "groupLabels": {"alertname": alert.alert_name},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "version": "4",
        # Alertmanager's form, route matchers then group labels; json.dumps quotes like Go's %q.
        "groupKey": f"{{}}:{{alertname={json.dumps(alert.alert_name)}}}",
        "truncatedAlerts": 0,
    }
