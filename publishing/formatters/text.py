"""Text shared by the formatters: an alert's one-line summary, clipping to a limit, and the
lines of a grouped message (docs/design.md (Storm grouping))."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from publishing.alert import Alert, AlertStatus, EnrichedAlert
from publishing.targets import Target


def summary_of(alert: Alert) -> str | None:
    """The ``summary`` annotation, else ``description``, else None."""
    return alert.annotations.get("summary") or alert.annotations.get("description") or None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def counts(alerts: Sequence[EnrichedAlert]) -> tuple[int, int]:
    """How many of ``alerts`` are firing and how many resolved."""
    firing = sum(1 for a in alerts if a.alert.status is AlertStatus.FIRING)
    return firing, len(alerts) - firing


def group_title(alerts: Sequence[EnrichedAlert], labels: Mapping[str, str]) -> str:
    """``3 alerts (2 firing, 1 resolved): cluster=eu-1``: a grouped message's one line."""
    firing, resolved = counts(alerts)
    parts = [f"{firing} firing"] * bool(firing) + [f"{resolved} resolved"] * bool(resolved)
    where = ", ".join(f"{k}={v}" for k, v in labels.items() if v)
    noun = "alert" if len(alerts) == 1 else "alerts"
    return f"{len(alerts)} {noun} ({', '.join(parts)})" + (f": {where}" if where else "")


def alert_line(enriched: EnrichedAlert) -> str:
    """One alert of a grouped message as one line: status, name, summary, fingerprint."""
    alert = enriched.alert
    summary = summary_of(alert)
    text = f"[{alert.status.value.upper()}] {alert.alert_name}" + (f": {summary}" if summary else "")
    return f"{text} ({alert.fingerprint})"


def listing_cap(target: Target, fits: int) -> int:
    """How many alerts a grouped message lists: the target's ``group_max_alerts``, at most
    what the format can hold."""
    limit = target.group.max_listed if target.group else None
    return fits if limit is None else min(limit, fits)
