"""Outbound payloads (docs/design.md (Targets and payloads)): one module a target format, chosen by ``target.format``.

A formatter that cannot build its payload is a permanent failure: the same alert would fail
the same way on every retry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
GroupFormatter = Callable[[Target, AlertGroup, str], dict[str, Any]]
Overlay = Callable[[dict[str, Any], Rendered], None]


@dataclass(frozen=True, slots=True)
class Format:
    """What one target format does."""

    build: Formatter
    # A storm group in one message (docs/design.md (Storm grouping)); a format without it has
    # its targets refused grouping when their file loads.
    build_group: GroupFormatter | None = None
    # Where the request goes when not to the target's URL (Opsgenie closes by alias).
    request_url: Callable[[Target, EnrichedAlert], str] | None = None
    # Where a target's templates go, in the formats built before templates existed; the newer
    # formats render them themselves, and the webhook and alertmanager formats carry the
    # alert's fields, not a title or text.
    template: Overlay | None = None


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


FORMATS: Mapping[TargetFormat, Format] = {
    TargetFormat.PAGERDUTY: Format(pagerduty.build, template=_template_pagerduty),
    TargetFormat.SLACK: Format(slack.build, slack.build_group, template=_template_slack),
    TargetFormat.ROOTLY: Format(rootly.build, template=_template_rootly),
    TargetFormat.WEBHOOK: Format(webhook.build, webhook.build_group),
    TargetFormat.ALERTMANAGER: Format(alertmanager.build, alertmanager.build_group),
    TargetFormat.MSTEAMS: Format(msteams.build, msteams.build_group),
    TargetFormat.OPSGENIE: Format(opsgenie.build, request_url=opsgenie.request_url),
    TargetFormat.EMAIL: Format(email.build, email.build_group),
    TargetFormat.DISCORD: Format(discord.build, discord.build_group),
}
GROUP_FORMATTERS: Mapping[TargetFormat, GroupFormatter] = {
    name: f.build_group for name, f in FORMATS.items() if f.build_group is not None
}


def request_url(target: Target, enriched: EnrichedAlert) -> str:
    """The URL this alert's request goes to (the target's own for most formats)."""
    where = FORMATS[target.format].request_url
    return where(target, enriched) if where is not None else target.url


def format_payload(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    """The JSON-ready body for one alert to one target, or ``PermanentPublishError``."""
    try:
        if isinstance(enriched, AlertGroup) and len(enriched.members) > 1:
            # A group's templates are not rendered: they are written for one alert.
            return GROUP_FORMATTERS[target.format](target, enriched, job_id)
        fmt = FORMATS[target.format]
        payload = fmt.build(target, enriched, job_id)
        if fmt.template is not None and target.template is not None:
            fmt.template(payload, render(target, enriched))
        return payload
    except PermanentPublishError:
        raise
    except Exception as exc:
        detail = target.redact(f"{type(exc).__name__}: {exc}")[:300]
        raise PermanentPublishError(
            f"payload the formatter cannot build: {target.format.value} for target {target.name!r}: {detail}"
        ) from exc
