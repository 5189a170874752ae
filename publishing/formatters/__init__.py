"""Outbound payloads (docs/design.md (Targets and payloads)): one module a target format, chosen by ``target.format``.

A formatter that cannot build its payload is a permanent failure: the same alert would fail
the same way on every retry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from publishing.alert import EnrichedAlert
from publishing.errors import PermanentPublishError
from publishing.formatters import (
    alertmanager,
    discord,
    email,
    msteams,
    opsgenie,
    pagerduty,
    rootly,
    slack,
    webhook,
)
from publishing.formatters.text import clip
from publishing.grouping import AlertGroup
from publishing.targets import Target, TargetFormat
from publishing.templates import Rendered, render

Formatter = Callable[[Target, EnrichedAlert, str], dict[str, Any]]

FORMATTERS: Mapping[TargetFormat, Formatter] = {
    TargetFormat.PAGERDUTY: pagerduty.build,
    TargetFormat.SLACK: slack.build,
    TargetFormat.ROOTLY: rootly.build,
    TargetFormat.WEBHOOK: webhook.build,
    TargetFormat.ALERTMANAGER: alertmanager.build,
    TargetFormat.MSTEAMS: msteams.build,
    TargetFormat.OPSGENIE: opsgenie.build,
    TargetFormat.EMAIL: email.build,
    TargetFormat.DISCORD: discord.build,
}
GroupFormatter = Callable[[Target, AlertGroup, str], dict[str, Any]]
# The formats that carry a storm group in one message (docs/design.md (Storm grouping)); the
# others' targets are refused grouping when their file loads.
GROUP_FORMATTERS: Mapping[TargetFormat, GroupFormatter] = {
    TargetFormat.SLACK: slack.build_group,
    TargetFormat.WEBHOOK: webhook.build_group,
    TargetFormat.ALERTMANAGER: alertmanager.build_group,
    TargetFormat.MSTEAMS: msteams.build_group,
    TargetFormat.EMAIL: email.build_group,
    TargetFormat.DISCORD: discord.build_group,
}
# Formats whose request goes somewhere other than the target's URL (Opsgenie closes by alias).
REQUEST_URLS: Mapping[TargetFormat, Callable[[Target, EnrichedAlert], str]] = {
    TargetFormat.OPSGENIE: opsgenie.request_url,
}


def _template_pagerduty(payload: dict[str, Any], rendered: Rendered) -> None:
    if rendered.title and "payload" in payload:
        payload["payload"]["summary"] = clip(rendered.title, pagerduty.SUMMARY_MAX_CHARS)


def _template_slack(payload: dict[str, Any], rendered: Rendered) -> None:
    if rendered.title:
        payload["text"] = clip(rendered.title, slack.TEXT_MAX_CHARS)
        payload["blocks"][0]["text"]["text"] = clip(rendered.title, slack.HEADER_MAX_CHARS)
        for attachment in payload["attachments"]:
            attachment["fallback"] = payload["text"]
    if rendered.text:
        # The third block is the alert's summary and description (``slack.build``).
        payload["blocks"][2]["text"]["text"] = clip(rendered.text, slack.SECTION_MAX_CHARS)


def _template_rootly(payload: dict[str, Any], rendered: Rendered) -> None:
    if rendered.title:
        payload["title"] = clip(rendered.title, rootly.TITLE_MAX_CHARS)
    if rendered.text:
        payload["description"] = rendered.text


# Where a target's templates go in the formats built before templates existed; the newer
# formatters (msteams, opsgenie, email, discord) render them themselves, and the webhook and
# alertmanager formats carry the alert's fields, not a title or text.
TEMPLATED: Mapping[TargetFormat, Callable[[dict[str, Any], Rendered], None]] = {
    TargetFormat.PAGERDUTY: _template_pagerduty,
    TargetFormat.SLACK: _template_slack,
    TargetFormat.ROOTLY: _template_rootly,
}


def request_url(target: Target, enriched: EnrichedAlert) -> str:
    """The URL this alert's request goes to (the target's own for most formats)."""
    where = REQUEST_URLS.get(target.format)
    return where(target, enriched) if where is not None else target.url


def format_payload(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    """The JSON-ready body for one alert to one target, or ``PermanentPublishError``."""
    try:
        if isinstance(enriched, AlertGroup) and len(enriched.members) > 1:
            # A group's templates are not rendered: they are written for one alert.
            return GROUP_FORMATTERS[target.format](target, enriched, job_id)
        payload = FORMATTERS[target.format](target, enriched, job_id)
        overlay = TEMPLATED.get(target.format)
        if overlay is not None and target.template is not None:
            overlay(payload, render(target, enriched))
        return payload
    except PermanentPublishError:
        raise
    except Exception as exc:
        detail = target.redact(f"{type(exc).__name__}: {exc}")[:300]
        raise PermanentPublishError(
            f"payload the formatter cannot build: {target.format.value} for target {target.name!r}: {detail}"
        ) from exc
