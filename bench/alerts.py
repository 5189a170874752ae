"""Alerts for the benchmarks: Alertmanager v4 payloads that are unique per run (no
de-duplication hit), and the very job messages the product would enqueue for them, for the
reference runs that bypass the API."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from publishing.alert import parse_alertmanager
from publishing.job import Job
from publishing.priority import priority_of

# The load mix: 2 in 10 critical (high), 6 warning (medium), 2 info (low).
MIX = (
    "critical",
    "critical",
    "warning",
    "warning",
    "warning",
    "warning",
    "warning",
    "warning",
    "info",
    "info",
)


def am_alert(run: str, seq: int, severity: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": "BenchHighLatency",
            "severity": severity,
            "service": "checkout",
            "namespace": "prod",
            "instance": f"bench-{run}-{seq}",
        },
        "annotations": {
            "summary": f"p99 latency above 500 ms on checkout (sample {seq})",
            "description": "The checkout service answers slowly; see the dashboard.",
            "runbook_url": "https://runbooks.example/checkout-latency",
        },
        "startsAt": "2026-11-28T10:00:00.123Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=latency",
    }


def payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "publishing",
        "status": "firing",
        "groupKey": '{}:{alertname="BenchHighLatency"}',
        "groupLabels": {"alertname": "BenchHighLatency"},
        "commonLabels": {"alertname": "BenchHighLatency"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


class AlertSource:
    """Numbered alerts of one run; severity from the load mix unless one is given."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.seq = 0

    def alerts(self, count: int, severity: str | None = None) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            out.append(am_alert(self.run, self.seq, severity or MIX[self.seq % len(MIX)]))
            self.seq += 1
        return out

    def bodies(self, requests: int, per_request: int, severity: str | None = None) -> list[bytes]:
        """Serialised webhook bodies, built before the clock starts."""
        return [json.dumps(payload(self.alerts(per_request, severity))).encode() for _ in range(requests)]

    def job_messages(self, count: int, target: str, severity: str | None = None) -> list[dict[str, Any]]:
        """The messages the product's submitter would enqueue for ``count`` new alerts."""
        parsed = parse_alertmanager(payload(self.alerts(count, severity)))
        return [
            Job(str(uuid.uuid4()), target, priority_of(a), a, submitted_at=time.time()).to_message()
            for a in parsed
        ]
