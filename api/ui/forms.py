"""The console's form fields read into domain values. Blank means "any"; a bad value comes
back as a message for the page (the same checks as the JSON API's parameters)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from api.errors import ApiError
from api.params import dlq_filter
from publishing.dlq import DLQFilter

DLQ_FIELDS = ("target", "priority", "error_type", "replayed", "failed_after", "failed_before")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# What a datetime-local input sends: a wall time without a zone, read as UTC.
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


@dataclass(frozen=True)
class DLQForm:
    query: DLQFilter = field(default_factory=DLQFilter)
    values: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _as_rfc3339(value: str) -> str:
    if _LOCAL_TIME.match(value):
        return value + (":00Z" if value.count(":") == 1 else "Z")
    return value


def read_dlq_filter(source: Mapping[str, str]) -> DLQForm:
    values = {name: source.get(name, "").strip() for name in DLQ_FIELDS}
    given: dict[str, str] = {k: v for k, v in values.items() if v}
    for name in ("failed_after", "failed_before"):
        if name in given:
            given[name] = _as_rfc3339(given[name])
    try:
        return DLQForm(dlq_filter(given), values)
    except ApiError as exc:
        return DLQForm(DLQFilter(), values, exc.message)


def page_of(source: Mapping[str, str]) -> tuple[int, int]:
    """``(limit, offset)`` from the query string; anything unexpected reads as the first page."""
    try:
        limit = int(source.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        limit = DEFAULT_PAGE_SIZE
    try:
        offset = max(0, min(int(source.get("offset", 0)), 2**31 - 1))
    except ValueError:
        offset = 0
    return (limit if limit in PAGE_SIZES else DEFAULT_PAGE_SIZE), offset
