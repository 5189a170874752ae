"""The email notification: a subject, a plain-text part and an HTML part with the same
content (``publishing.adapters.smtp`` puts them in one ``multipart/alternative`` message)."""

from __future__ import annotations

from html import escape
from typing import Any

from publishing.alert import EnrichedAlert, format_time
from publishing.formatters.text import alert_line, clip, group_title, listing_cap
from publishing.grouping import AlertGroup
from publishing.targets import Target
from publishing.templates import title_and_text

# A subject is one line; mail clients show about this much of it.
SUBJECT_MAX_CHARS = 200


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    alert = enriched.alert
    title, text = title_and_text(target, enriched)
    facts = [
        ("Status", alert.status.value),
        ("Severity", enriched.severity or "unknown"),
        ("Started", format_time(alert.starts_at)),
    ]
    if alert.ends_at is not None:
        facts.append(("Ended", format_time(alert.ends_at)))
    facts.append(("Fingerprint", alert.fingerprint))
    labels = sorted(alert.labels.items())

    plain = [title, "", text, ""]
    plain += [f"{k}: {v}" for k, v in facts]
    if labels:
        plain += ["", "Labels:", *(f"  {k}={v}" for k, v in labels)]
    if alert.generator_url:
        plain += ["", f"Source: {alert.generator_url}"]

    paragraphs = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    html = [f"<h2>{escape(title)}</h2>", paragraphs, f"<table>{rows}</table>"]
    if labels:
        items = "".join(f"<li><code>{escape(k)}={escape(v)}</code></li>" for k, v in labels)
        html.append(f"<ul>{items}</ul>")
    if alert.generator_url:
        html.append(f'<p><a href="{escape(alert.generator_url, quote=True)}">Source</a></p>')
    return {
        # A newline in a header would start another one: the subject is kept to one line.
        "subject": clip(" ".join(title.split()), SUBJECT_MAX_CHARS),
        "text": "\n".join(plain) + "\n",
        "html": "<html><body>" + "".join(html) + "</body></html>",
    }


def build_group(target: Target, group: AlertGroup, job_id: str) -> dict[str, Any]:
    """Many alerts in one mail: the counts as the subject, one line an alert (firing first)
    up to ``group_max_alerts`` (every alert when unset), then "+k more"."""
    alerts = group.members
    title = group_title(alerts, group.group_labels)
    cap = listing_cap(target, len(alerts))
    lines = [alert_line(a) for a in alerts[:cap]]
    more = [f"+{len(alerts) - cap} more"] if len(alerts) > cap else []
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    html = [f"<h2>{escape(title)}</h2>", f"<ul>{items}</ul>", *(f"<p>{escape(m)}</p>" for m in more)]
    return {
        "subject": clip(" ".join(title.split()), SUBJECT_MAX_CHARS),
        "text": "\n".join([title, "", *lines, *more]) + "\n",
        "html": "<html><body>" + "".join(html) + "</body></html>",
    }
