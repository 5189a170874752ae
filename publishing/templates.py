"""A target's own title and text, as Jinja2 templates rendered in a sandbox with the alert's
fields: checked when the targets file loads, used by every format that has a title or text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from publishing.alert import EnrichedAlert, format_time
from publishing.targets import Target

# A template names what it shows; a missing label renders empty rather than failing the
# delivery (a permanent error) on every alert that lacks it.
_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


class TemplateProblem(ValueError):
    """A template does not compile; ``lineno`` is the line of the template it points at."""

    def __init__(self, message: str, lineno: int | None) -> None:
        self.lineno = lineno
        super().__init__(message)


@lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """The compiled template, or ``TemplateProblem`` naming the line of a syntax error."""
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"syntax error at line {exc.lineno}: {exc.message}", exc.lineno) from None


def context_of(enriched: EnrichedAlert) -> dict[str, Any]:
    """What a template may use: the alert's fields, plain values only."""
    alert = enriched.alert
    classification = enriched.classification
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "status": alert.status.value,
        "severity": enriched.severity or "",
        "alert_name": alert.alert_name,
        "fingerprint": alert.fingerprint,
        "starts_at": format_time(alert.starts_at),
        "ends_at": format_time(alert.ends_at) if alert.ends_at is not None else None,
        "generator_url": alert.generator_url,
        "classification": classification.to_dict() if classification is not None else None,
    }


@dataclass(frozen=True)
class Rendered:
    """A target's rendered title and text; ``None`` where it has no template."""

    title: str | None = None
    text: str | None = None


def render(target: Target, enriched: EnrichedAlert) -> Rendered:
    template = target.template
    if template is None:
        return Rendered()
    context = context_of(enriched)

    def one(source: str | None) -> str | None:
        return compile_template(source).render(context).strip() if source is not None else None

    return Rendered(one(template.title), one(template.text))


def default_title(enriched: EnrichedAlert) -> str:
    """``[FIRING] HighErrorRate``: what a title says without a template."""
    alert = enriched.alert
    return f"[{alert.status.value.upper()}] {alert.alert_name}"


def default_text(enriched: EnrichedAlert) -> str:
    """Summary, description and the classification's reasoning, as plain text."""
    alert = enriched.alert
    summary = alert.annotations.get("summary", "")
    description = alert.annotations.get("description", "")
    lines = [p for p in (summary, description if description != summary else "") if p]
    classification = enriched.classification
    if classification is not None and classification.reasoning:
        lines.append(
            f"Classification: {classification.severity.value} ({classification.confidence:.0%} confident). "
            + classification.reasoning
        )
    return "\n\n".join(lines) or alert.alert_name


def title_and_text(target: Target, enriched: EnrichedAlert, *, title: str | None = None) -> tuple[str, str]:
    """The target's rendered title and text, each falling back to the default (or to the
    format's own ``title``)."""
    rendered = render(target, enriched)
    return (
        rendered.title or title or default_title(enriched),
        rendered.text or default_text(enriched),
    )
