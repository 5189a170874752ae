"""The query parameters of each route, declared once: ``require(query=...)`` refuses any other
parameter with a 400, the routes read their bounds and defaults from here, and the OpenAPI
document lists them from the same models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import annotated_types
from pydantic import BaseModel, ConfigDict, Field

from api.params import DURATION
from publishing.classification import ErrorType
from publishing.dlq import MAX_PAGE
from publishing.history import MAX_HISTORY_PAGE
from publishing.priority import Priority
from publishing.tracking import JobState

DEFAULT_PURGE_AGE = "168h"
# A younger cut reaches rows an operator may not have seen yet, let alone replayed: it takes force.
MIN_PURGE_AGE_S = 3600
MAX_OFFSET = 2**31 - 1
MAX_JOBS_LIMIT = 1000


class Query(BaseModel):
    """A route's query parameters; none is required, and no other is accepted."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def default(cls, name: str) -> Any:
        return cls.model_fields[name].default

    @classmethod
    def int_bounds(cls, name: str) -> tuple[int, int, int]:
        """``(default, minimum, maximum)`` of an integer parameter."""
        field = cls.model_fields[name]
        low = next(cast(int, m.ge) for m in field.metadata if isinstance(m, annotated_types.Ge))
        high = next(cast(int, m.le) for m in field.metadata if isinstance(m, annotated_types.Le))
        return int(field.default), low, high


class JobsQuery(Query):
    state: JobState | None = None
    priority: Priority | None = None
    target: str | None = None
    limit: int = Field(100, ge=1, le=MAX_JOBS_LIMIT)


class HistoryQuery(Query):
    fingerprint: str | None = Field(None, min_length=1)
    alertname: str | None = Field(None, min_length=1)
    target: str | None = Field(None, min_length=1, description="The job's target.")
    since: datetime | None = Field(None, description="Attempts at or after this time.")
    until: datetime | None = Field(None, description="Attempts before this time.")
    limit: int = Field(100, ge=1, le=MAX_HISTORY_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class DLQFilterFields(BaseModel):
    """The filters a DLQ listing takes as parameters and a bulk replay as its body."""

    target: str | None = Field(None, min_length=1)
    error_type: ErrorType | None = None
    priority: Priority | None = None
    failed_after: datetime | None = Field(None, description="Rows that failed at or after this time.")
    failed_before: datetime | None = Field(None, description="Rows that failed before this time.")


class DLQListQuery(DLQFilterFields, Query):
    replayed: bool | None = None
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class PurgeQuery(Query):
    older_than: str = Field(
        DEFAULT_PURGE_AGE,
        pattern=DURATION.pattern,
        description="A duration such as 168h, 7d, 30m, 90s or 1h30m (units ms, s, m, h, d, w).",
    )
    replayed_only: bool = False
    force: bool = Field(False, description="Needed for an older_than under 1h.")
    dry_run: bool = Field(False, description="Count the rows that would go (would_delete); delete none.")
