"""The delivery history in SQL (docs/design.md (Delivery history)): ``publishing_history``, one
row an attempt, and ``publishing_history_jobs``, each job's alert once; a repository over them
for PostgreSQL and SQLite alike. The tables share the DLQ's metadata, so one Alembic history
builds both."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from publishing.adapters.sql import (
    JSON,
    Converters,
    UtcDateTime,
    _is_unreachable,
    _jsonable,
    _Refused,
    _storable,
    column_names,
    converted,
    from_row,
    matching,
    metadata,
    nullable,
    transaction,
    within,
)
from publishing.classification import ErrorType
from publishing.errors import DatabaseUnavailableError
from publishing.history import (
    MAX_BATCH,
    MAX_HISTORY_PAGE,
    AttemptRecord,
    AttemptResult,
    HistoryQuery,
    history_not_found,
)
from publishing.priority import Priority

log = logging.getLogger(__name__)

publishing_history_jobs = sa.Table(
    "publishing_history_jobs",
    metadata,
    sa.Column("job_id", sa.Text(), nullable=False),
    sa.Column("alert", JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("job_id", name="pk_publishing_history_jobs"),
)
sa.Index("ix_publishing_history_jobs_created_at", publishing_history_jobs.c.created_at)

publishing_history = sa.Table(
    "publishing_history",
    metadata,
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("job_id", sa.Text(), nullable=False),
    sa.Column("target", sa.Text(), nullable=False),
    sa.Column("via", sa.Text(), nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("attempted_at", UtcDateTime(), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=False),
    sa.Column("error_type", sa.String(16), nullable=True),
    sa.Column("excerpt", sa.Text(), nullable=True),
    sa.Column("fingerprint", sa.Text(), nullable=False),
    sa.Column("alert_name", sa.Text(), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("id", name="pk_publishing_history"),
)
# Each filter with the listing's order, so a filtered page reads one index range.
sa.Index(
    "ix_publishing_history_fingerprint", publishing_history.c.fingerprint, publishing_history.c.attempted_at
)
sa.Index(
    "ix_publishing_history_alert_name", publishing_history.c.alert_name, publishing_history.c.attempted_at
)
sa.Index("ix_publishing_history_target", publishing_history.c.target, publishing_history.c.attempted_at)
sa.Index("ix_publishing_history_attempted_at", publishing_history.c.attempted_at.desc())
sa.Index("ix_publishing_history_job_id", publishing_history.c.job_id)


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _insert_jobs(conn: Connection) -> Any:
    # RETURNING makes SQLAlchemy send the rows as one multi-row INSERT, not one statement each.
    statement = _insert(conn, publishing_history_jobs).on_conflict_do_nothing(index_elements=["job_id"])
    return statement.returning(publishing_history_jobs.c.job_id)


def _insert_attempts(conn: Connection) -> Any:
    # RETURNING counts what was added: a record already stored (same id) returns nothing.
    statement = _insert(conn, publishing_history).on_conflict_do_nothing(index_elements=["id"])
    return statement.returning(publishing_history.c.id)


# The fields an AttemptRecord holds in another type than its column: (into the column, out of
# it). The other fields are stored as they are.
_CONVERTERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "id": (uuid.UUID, str),
    "result": (attrgetter("value"), AttemptResult),
    "error_type": (nullable(attrgetter("value")), nullable(ErrorType)),
    "priority": (attrgetter("value"), Priority),
}
_ENCODERS: Converters = {name: encode for name, (encode, _) in _CONVERTERS.items()}
_DECODERS: Converters = {name: decode for name, (_, decode) in _CONVERTERS.items()}


def _fast_row(record: AttemptRecord) -> dict[str, Any]:
    """The row as the record has it: what the database refuses sends the batch to ``_row``."""
    return converted({name: getattr(record, name) for name in column_names(publishing_history)}, _ENCODERS)


def _row(record: AttemptRecord) -> dict[str, Any]:
    """The row with every text made storable; an empty via or excerpt is stored as NULL."""
    row = {name: _storable(v) if isinstance(v, str) else v for name, v in _fast_row(record).items()}
    row["via"] = row["via"] or None
    row["excerpt"] = row["excerpt"] or None
    return row


def _alert(record: AttemptRecord) -> Any:
    try:
        return _jsonable(record.alert)
    except _Refused as refused:
        # The alert was validated when submitted: this is a bug's safety net, not a path.
        return {"unstorable": refused.reason}


def _record(row: RowMapping, alert: Any = None) -> AttemptRecord:
    return from_row(AttemptRecord, row, publishing_history, _DECODERS, alert=alert)


def _where(query: HistoryQuery) -> list[sa.ColumnElement[bool]]:
    clauses = matching(
        publishing_history, fingerprint=query.fingerprint, alert_name=query.alert_name, target=query.target
    )
    return clauses + within(publishing_history.c.attempted_at, query.since, query.until)


class SqlHistoryRepository:
    """``HistoryRepository`` over an SQLAlchemy engine; the tables come from ``alembic upgrade
    head``. An unreachable database is ``DatabaseUnavailableError``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _begin(self) -> AbstractContextManager[Connection]:
        return transaction(self.engine, "history")

    def append(self, records: Sequence[AttemptRecord]) -> int:
        if not records:
            return 0
        assert len(records) <= MAX_BATCH, "a batch is at most MAX_BATCH records"
        try:
            return self._append(records, strict=False)
        except sa.exc.DBAPIError as exc:
            if _is_unreachable(exc):
                raise DatabaseUnavailableError(
                    f"the history database cannot be reached: {type(exc).__name__}"
                ) from exc
        # The database refused something in the batch (a NUL, a lone surrogate): one record
        # at a time, made storable, so the refused one is dropped and the rest kept.
        added = 0
        for record in records:
            try:
                added += self._append([record], strict=True)
            except sa.exc.DBAPIError as exc:
                if _is_unreachable(exc):
                    raise DatabaseUnavailableError("the history database connection was lost") from exc
                log.warning("history: attempt %s of job %s refused; dropped", record.id, record.job_id)
        return added

    def _append(self, records: Sequence[AttemptRecord], *, strict: bool) -> int:
        """One INSERT of the batch's alerts and one of its attempts (executemany over a cached
        statement: compiling a 500-row VALUES list would cost the worker more than sending it)."""
        alerts: dict[str, dict[str, Any]] = {}
        for record in records:
            if record.alert is not None and record.job_id not in alerts:
                alerts[record.job_id] = {
                    "job_id": record.job_id,
                    "alert": _alert(record) if strict else record.alert,
                    "created_at": record.attempted_at,
                }
        rows = [_row(r) if strict else _fast_row(r) for r in records]
        with self.engine.begin() as conn:
            if alerts:
                conn.execute(_insert_jobs(conn), list(alerts.values())).all()
            return len(conn.execute(_insert_attempts(conn), rows).all())

    def query(
        self, query: HistoryQuery, limit: int = 100, offset: int = 0
    ) -> tuple[list[AttemptRecord], int]:
        limit, offset = max(1, min(limit, MAX_HISTORY_PAGE)), max(0, offset)
        c = publishing_history.c
        where = _where(query)
        with self._begin() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(publishing_history).where(*where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(publishing_history)
                .where(*where)
                .order_by(c.attempted_at.desc(), c.attempt.desc(), c.id.desc())
                .limit(limit)
                .offset(offset)
            ).mappings()
            return [_record(row) for row in rows], int(total)

    def attempts_of(self, job_id: str) -> list[AttemptRecord]:
        c = publishing_history.c
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(publishing_history)
                .where(c.job_id == job_id)
                .order_by(c.attempted_at, c.attempt, c.id)
            ).mappings()
            return [_record(row) for row in rows]

    def get(self, attempt_id: str) -> AttemptRecord:
        try:
            key = uuid.UUID(str(attempt_id))
        except ValueError:
            raise history_not_found(attempt_id) from None
        h, j = publishing_history, publishing_history_jobs
        with self._begin() as conn:
            row = conn.execute(
                sa.select(h, j.c.alert).select_from(h.outerjoin(j, h.c.job_id == j.c.job_id)).where(h.c.id == key)
            ).mappings().first()  # fmt: skip
        if row is None:
            raise history_not_found(attempt_id)
        return _record(row, row["alert"])

    def prune(self, before: datetime, batch: int = MAX_BATCH) -> int:
        h, j = publishing_history, publishing_history_jobs
        oldest = sa.select(h.c.id).where(h.c.attempted_at < before).order_by(h.c.attempted_at).limit(batch)
        orphans = (
            sa.select(j.c.job_id)
            .where(j.c.created_at < before, ~sa.exists().where(h.c.job_id == j.c.job_id))
            .limit(batch)
        )
        with self._begin() as conn:
            # A subquery, not DELETE ... LIMIT: PostgreSQL has no such thing.
            deleted = conn.execute(sa.delete(h).where(h.c.id.in_(oldest.scalar_subquery()))).rowcount
            conn.execute(sa.delete(j).where(j.c.job_id.in_(orphans.scalar_subquery())))
        return max(0, deleted)
