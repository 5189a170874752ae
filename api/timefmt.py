"""Times as the API shows them: ISO 8601 in UTC (``2026-12-01T15:04:05.123456+00:00``), the form
the DLQ's rows have. The domain keeps Unix seconds; the routes convert at the edge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

JOB_TIMES = ("submitted_at", "started_at", "completed_at")
BREAKER_TIMES = ("opened_at",)
HEALTH_TIMES = ("last_success_at", "last_failure_at")


def iso(seconds: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC; None stays None."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def with_iso_times(data: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``data`` with each of ``fields`` it holds turned from Unix seconds to ISO 8601."""
    shown = dict(data)
    for name in fields:
        if name in shown:
            shown[name] = iso(shown[name])
    return shown


def job_json(job: Mapping[str, Any]) -> dict[str, Any]:
    return with_iso_times(job, JOB_TIMES)


def breaker_json(breaker: Mapping[str, Any]) -> dict[str, Any]:
    return with_iso_times(breaker, BREAKER_TIMES)


def health_json(health: Mapping[str, Any]) -> dict[str, Any]:
    shown = with_iso_times(health, HEALTH_TIMES)
    shown["breaker_history"] = [with_iso_times(entry, ("at",)) for entry in health.get("breaker_history", [])]
    return shown
