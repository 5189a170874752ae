"""Outbound payloads (docs/design.md (Targets and payloads)): one module a target format, chosen by ``target.format``.

A formatter that cannot build its payload is a permanent failure: the same alert would fail
the same way on every retry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from publishing.alert import EnrichedAlert
from publishing.errors import PermanentPublishError
from publishing.formatters import alertmanager, pagerduty, rootly, slack, webhook
from publishing.targets import Target, TargetFormat

Formatter = Callable[[Target, EnrichedAlert, str], dict[str, Any]]

FORMATTERS: Mapping[TargetFormat, Formatter] = {
    TargetFormat.PAGERDUTY: pagerduty.build,
    TargetFormat.SLACK: slack.build,
    TargetFormat.ROOTLY: rootly.build,
    TargetFormat.WEBHOOK: webhook.build,
    TargetFormat.ALERTMANAGER: alertmanager.build,
}


def format_payload(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    """The JSON-ready body for one alert to one target, or ``PermanentPublishError``."""
    try:
        return FORMATTERS[target.format](target, enriched, job_id)
    except PermanentPublishError:
        raise
    except Exception as exc:
        detail = target.redact(f"{type(exc).__name__}: {exc}")[:300]
        raise PermanentPublishError(
            f"payload the formatter cannot build: {target.format.value} for target {target.name!r}: {detail}"
        ) from exc
