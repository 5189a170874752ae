"""Text shared by the formatters: an alert's one-line summary and clipping to a limit."""

from __future__ import annotations

from publishing.alert import Alert


def summary_of(alert: Alert) -> str | None:
    """The ``summary`` annotation, else ``description``, else None."""
    return alert.annotations.get("summary") or alert.annotations.get("description") or None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
