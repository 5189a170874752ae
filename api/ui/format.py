"""How the console writes times, ages and JSON: UTC to the second, ages in their two largest
units (``3m 10s``), JSON indented with its keys in their stored order."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_UNITS = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))


def when(value: datetime | float | None) -> str:
    if value is None:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    parts, rest = [], int(seconds)
    for unit, size in _UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(parts[:2])


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


FILTERS: dict[str, Callable[..., str]] = {"when": when, "span": span, "pretty": pretty, "percent": percent}
