# Over 300 lines: the table, its type decorators and the repository are one schema, read together.
"""The dead-letter queue in SQL (docs/design.md (Dead-letter queue)): the ``publishing_dlq`` table and a repository over it
that works on PostgreSQL and SQLite alike. An unreachable database is always reported as
``DatabaseUnavailableError``, so a worker keeps the job and retries the write; a row the
database answers it will not take is stored in a reduced form instead, so it is never lost."""

from __future__ import annotations

import functools
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from publishing.classification import ErrorType
from publishing.dlq import (
    DeadLetter,
    DLQFilter,
    DLQStats,
    ReplayResult,
    as_utc,
    not_found,
    page_bounds,
    parse_id,
    replay_details,
    row_key,
)
from publishing.errors import AlreadyReplayedError, DatabaseUnavailableError
from publishing.priority import Priority
from publishing.settings import normalise_database_url

log = logging.getLogger(__name__)

T = TypeVar("T")
# Per column, how a value changes type on its way between a record and its row.
Converters = Mapping[str, Callable[[Any], Any]]

TABLE_NAME = "publishing_dlq"
# PostgreSQL answers a refused or unroutable host within this many seconds instead of the
# libpq default (forever), so a DLQ write fails fast and the job retries it later.
CONNECT_TIMEOUT_S = 3


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware timestamp stored and returned in UTC. SQLite keeps no offset, so
    values are written in UTC and the offset restored on the way out; naive values are UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return as_utc(value)


def _in(column: str, values: list[str]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ERROR_TYPES = [e.value for e in ErrorType]
PRIORITIES = [p.value for p in Priority]
REPLAY_RESULTS = [r.value for r in ReplayResult]

metadata = sa.MetaData()

publishing_dlq = sa.Table(
    TABLE_NAME,
    metadata,
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("job_id", sa.Uuid(), nullable=False),
    sa.Column("fingerprint", sa.Text(), nullable=False),
    sa.Column("target_name", sa.Text(), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("enriched_alert", JSON, nullable=False),
    sa.Column("target_config", JSON, nullable=False),
    sa.Column("error_message", sa.Text(), nullable=False),
    sa.Column("error_type", sa.String(16), nullable=False),
    sa.Column("retry_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("last_retry_at", UtcDateTime(), nullable=True),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("failed_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
    sa.Column("updated_at", UtcDateTime(), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
    sa.Column("replayed", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("replayed_at", UtcDateTime(), nullable=True),
    sa.Column("replay_result", sa.String(16), nullable=True),
    sa.Column("replay_job_id", sa.Uuid(), nullable=True),
    sa.Column("replayed_from", sa.Uuid(), nullable=True),
    sa.Column("delivered_via", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id", name="pk_publishing_dlq"),
    sa.CheckConstraint(_in("error_type", ERROR_TYPES), name="ck_publishing_dlq_error_type"),
    sa.CheckConstraint(_in("priority", PRIORITIES), name="ck_publishing_dlq_priority"),
    sa.CheckConstraint(
        f"replay_result IS NULL OR {_in('replay_result', REPLAY_RESULTS)}",
        name="ck_publishing_dlq_replay_result",
    ),
    sa.CheckConstraint("retry_count >= 0", name="ck_publishing_dlq_retry_count"),
    # A replayed row says when and as which job; an unreplayed one says neither.
    sa.CheckConstraint(
        "(replayed AND replayed_at IS NOT NULL AND replay_job_id IS NOT NULL)"
        " OR (NOT replayed AND replayed_at IS NULL AND replay_job_id IS NULL)",
        name="ck_publishing_dlq_replayed",
    ),
)
sa.Index("ix_publishing_dlq_job_id", publishing_dlq.c.job_id, unique=True)
sa.Index("ix_publishing_dlq_target_name", publishing_dlq.c.target_name)
sa.Index("ix_publishing_dlq_error_type", publishing_dlq.c.error_type)
sa.Index("ix_publishing_dlq_priority", publishing_dlq.c.priority)
sa.Index("ix_publishing_dlq_failed_at", publishing_dlq.c.failed_at.desc())
sa.Index("ix_publishing_dlq_fingerprint", publishing_dlq.c.fingerprint)
# What replay-many scans: the rows still waiting, newest first.
sa.Index(
    "ix_publishing_dlq_unreplayed",
    publishing_dlq.c.failed_at.desc(),
    postgresql_where=sa.text("replayed = false"),
    sqlite_where=sa.text("replayed = 0"),
)


def create_engine_for(url: str) -> Engine:
    """An engine for ``DATABASE_URL``: psycopg2 for PostgreSQL, a short connect timeout, and
    for a SQLite file its directory made if missing."""
    url = normalise_database_url(url)
    parsed = sa.make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    elif parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _storable(text: str) -> str:
    """Text PostgreSQL accepts: no lone surrogates, no NUL. A dead letter must be writable
    whatever the job carried, or the job could never leave the broker."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


# Deeper JSON than this is stored as text: the drivers' JSON encoders recurse, and a job
# carries at most about 20 levels (docs/design.md (Alerts) caps metadata at 16).
MAX_STORED_DEPTH = 100
# What an indexed text column keeps in the reduced form: a btree entry holds at most about
# 2,700 bytes, and 255 characters of UTF-8 are at most 1,020.
MAX_INDEXED_CHARS = 255
MAX_RETRY_COUNT = 2**31 - 1
# SQLSTATE classes in which the server answered that it will not take this row: data
# exceptions (22: NaN in jsonb, a value out of range), integrity (23: a check constraint) and
# program limits (54: an index row too big). Every other class (08 connection, 53 resources,
# 57 shutdown, 40 serialisation) means "try again later".
REFUSING_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})


class _Refused(Exception):
    """The database (or the row's own shape) will not take this row as it is: ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON that every database here stores: text made storable, datetimes as ISO
    strings, tuples as lists. Iterative, so no depth recurses; ``_Refused`` past
    ``MAX_STORED_DEPTH`` levels, which the drivers' own encoders could not write."""
    root: list[Any] = [None]
    # (source value, the container to put its converted form in, the key or index there, depth)
    pending: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while pending:
        item, into, key, depth = pending.pop()
        if isinstance(item, Mapping | list | tuple) and depth >= MAX_STORED_DEPTH:
            raise _Refused(f"nested more than {MAX_STORED_DEPTH} levels deep")
        if isinstance(item, Mapping):
            converted: dict[str, Any] = {}
            into[key] = converted
            for k, v in item.items():
                name = _storable(str(k))
                converted[name] = None  # keeps the keys' order
                pending.append((v, converted, name, depth + 1))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            into[key] = items
            pending.extend((v, items, i, depth + 1) for i, v in enumerate(item))
        elif isinstance(item, datetime):
            into[key] = item.isoformat()
        elif isinstance(item, str):
            into[key] = _storable(item)
        else:
            into[key] = item
    return root[0]


class _Text:
    """A piece of JSON text already written, pending on ``_json_text``'s stack."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _json_text(value: Any) -> str:
    """``value`` as ASCII JSON text, whatever its depth and content: iterative, lone surrogates
    and NUL escaped, NaN and infinities as JSON5 spells them, anything else as its repr."""
    out: list[str] = []
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, Mapping):
            pending.append(_Text("}"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                k, v = entries[i]
                pending.append(v)
                pending.append(_Text(("," if i else "") + json.dumps(str(k)) + ":"))
            pending.append(_Text("{"))
        elif isinstance(item, list | tuple):
            pending.append(_Text("]"))
            for i in range(len(item) - 1, -1, -1):
                pending.append(item[i])
                if i:
                    pending.append(_Text(","))
            pending.append(_Text("["))
        elif isinstance(item, datetime):
            out.append(json.dumps(item.isoformat()))
        elif item is None or isinstance(item, str | bool | int | float):
            out.append(json.dumps(item))
        else:
            out.append(json.dumps(repr(item)))
    return "".join(out)


def _reduced(letter: DeadLetter, reason: str) -> dict[str, Any]:
    """The row as every database here takes it: the alert and target as escaped JSON text,
    the reason in the error message, indexed text cut short, numbers within their columns."""

    def uuid_of(value: str | None, fallback: uuid.UUID | None) -> uuid.UUID | None:
        try:
            return parse_id(str(value)) if value is not None else fallback
        except ValueError:
            return fallback

    def short(text: str) -> str:
        return _storable(text)[:MAX_INDEXED_CHARS]

    job_id = uuid_of(letter.job_id, None) or uuid.uuid5(uuid.NAMESPACE_URL, f"job:{letter.job_id}")
    replay_job_id = uuid_of(letter.replay_job_id, None)
    replayed = bool(letter.replayed and letter.replayed_at is not None and replay_job_id is not None)
    return {
        "id": uuid_of(letter.id, None) or uuid.uuid4(),
        "job_id": job_id,
        "fingerprint": short(letter.fingerprint),
        "target_name": short(letter.target_name),
        "target_type": short(letter.target_type)[:32],
        "enriched_alert": {
            "stored_as_text": reason,
            "job_id": short(str(letter.job_id)),
            "text": _json_text(letter.enriched_alert),
        },
        "target_config": {"name": short(letter.target_name), "text": _json_text(letter.target_config)},
        "error_message": _storable(f"{letter.error_message} (stored as text: {reason})"),
        "error_type": ErrorType(letter.error_type).value,
        "retry_count": min(max(int(letter.retry_count), 0), MAX_RETRY_COUNT),
        "last_retry_at": letter.last_retry_at,
        "priority": Priority(letter.priority).value,
        "failed_at": letter.failed_at,
        "replayed": replayed,
        "replayed_at": letter.replayed_at if replayed else None,
        "replay_result": letter.replay_result.value if letter.replay_result else None,
        "replay_job_id": replay_job_id if replayed else None,
        "replayed_from": uuid_of(letter.replayed_from, None),
        "delivered_via": short(letter.delivered_via) if letter.delivered_via is not None else None,
    }


def _refusal(exc: Exception) -> str | None:
    """Why the database refused this row, or None when it may take it later (unreachable,
    busy) or the failure is not the row's (a bug, a missing table)."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return None
        code = getattr(exc.orig, "pgcode", None)
        if code:  # PostgreSQL answered: the class says whether it is this row
            return f"SQLSTATE {code}" if code[:2] in REFUSING_SQLSTATE_CLASSES else None
        if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):  # SQLite
            return type(exc.orig).__name__
        return None
    if isinstance(exc, sa.exc.StatementError):
        # A value the driver could not even bind (a JSON encoder's ValueError or RecursionError).
        return type(exc.orig).__name__ if exc.orig is not None else "unbindable value"
    if isinstance(exc, RecursionError | OverflowError | ValueError):
        return type(exc).__name__
    return None


def _finite_or_refused(value: Any) -> None:
    """SQLite would store NaN and infinities as text no JSON reader takes: refuse them here
    too, as PostgreSQL's jsonb does, so both keep the same reduced form."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise _Refused(f"a number that JSON cannot hold ({item})")
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` for a nullable column: None (or an empty value) stays None."""
    return lambda value: convert(value) if value else None


@functools.cache
def column_names(table: sa.Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns)


def converted(values: dict[str, Any], converters: Converters) -> dict[str, Any]:
    """``values``, each one named in ``converters`` passed through its function (in place: a
    batch of rows is converted on the worker's hot path)."""
    for name, convert in converters.items():
        values[name] = convert(values[name])
    return values


def from_row(
    record: Callable[..., T], row: RowMapping, table: sa.Table, decode: Converters, **extra: Any
) -> T:
    """``record`` built from ``row``, one keyword a column of ``table`` (the tables name their
    columns as the records name their fields); a column in ``decode`` goes through its function."""
    values = converted({name: row[name] for name in column_names(table)}, decode)
    return record(**values, **extra)


# What a DLQ row holds that DeadLetter keeps in another type; the other columns are as stored.
_LETTER_DECODERS: Converters = {
    "id": str,
    "job_id": str,
    "error_type": ErrorType,
    "priority": Priority,
    "replayed": bool,
    "replay_result": nullable(ReplayResult),
    "replay_job_id": nullable(str),
    "replayed_from": nullable(str),
}


def _letter(row: RowMapping) -> DeadLetter:
    return from_row(DeadLetter, row, publishing_dlq, _LETTER_DECODERS)


def matching(table: sa.Table, **values: Any) -> list[sa.ColumnElement[bool]]:
    """``column == value`` for each column given a value; None asks for no condition."""
    return [table.c[name] == value for name, value in values.items() if value is not None]


def within(column: sa.ColumnElement[Any], start: Any, end: Any) -> list[sa.ColumnElement[bool]]:
    """Half-open bounds, ``start`` <= column < ``end``, so consecutive windows never share a
    row; a None bound is open."""
    bounds: list[sa.ColumnElement[bool]] = []
    if start is not None:
        bounds.append(column >= start)
    if end is not None:
        bounds.append(column < end)
    return bounds


def _where(query: DLQFilter) -> list[sa.ColumnElement[bool]]:
    c = publishing_dlq.c
    clauses = matching(
        publishing_dlq,
        target_name=query.target,
        error_type=query.error_type.value if query.error_type else None,
        priority=query.priority.value if query.priority else None,
    )
    if query.replayed is not None:
        clauses.append(c.replayed == (sa.true() if query.replayed else sa.false()))
    return clauses + within(c.failed_at, query.failed_after, query.failed_before)


def _is_unreachable(exc: BaseException) -> bool:
    """The database could not be asked (or could not answer now): the write waits and retries."""
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.InterfaceError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError)
    return False


def _unavailable(exc: BaseException, what: str) -> DatabaseUnavailableError:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailableError(f"the {what} database connection was lost")
    reason = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).strip().splitlines()
    first = reason[0][:200] if reason else type(exc).__name__
    return DatabaseUnavailableError(f"the {what} database cannot be reached: {first}")


@contextmanager
def transaction(engine: Engine, what: str = "dead-letter") -> Iterator[Connection]:
    """A transaction on ``engine``: an unreachable database is ``DatabaseUnavailableError``
    (the caller waits); any other database error (a refused row) is raised as it is."""
    try:
        with engine.begin() as conn:
            yield conn
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        if not _is_unreachable(exc):
            raise
        raise _unavailable(exc, what) from exc


class SqlDeadLetterRepository:
    """``DeadLetterRepository`` over an SQLAlchemy engine (PostgreSQL in production, SQLite on
    a laptop). The table must exist: ``alembic upgrade head`` creates it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _begin(self) -> AbstractContextManager[Connection]:
        return transaction(self.engine)

    def write(self, letter: DeadLetter) -> bool:
        """A row the database will not take as it is (too deep, too big for an index, a number
        jsonb refuses, a value out of range) is stored reduced (``_reduced``), never lost and
        never retried forever; an unreachable database is ``DatabaseUnavailableError``."""
        try:
            return self._insert(self._values(letter))
        except _Refused as refused:
            reason = refused.reason
        log.warning(
            "dead letter of job %s refused as it is (%s); storing the alert as text", letter.job_id, reason
        )
        try:
            return self._insert(_reduced(letter, reason))
        except _Refused as refused:
            raise DatabaseUnavailableError(
                f"the reduced dead letter was refused too: {refused.reason}"
            ) from None

    def _values(self, letter: DeadLetter) -> dict[str, Any]:
        try:
            ids = {
                "id": parse_id(letter.id),
                "job_id": parse_id(letter.job_id),
                "replay_job_id": parse_id(letter.replay_job_id) if letter.replay_job_id else None,
                "replayed_from": parse_id(letter.replayed_from) if letter.replayed_from else None,
            }
        except ValueError as exc:
            raise _Refused(f"an id that is not a UUID ({exc})") from None
        enriched_alert = _jsonable(letter.enriched_alert)
        target_config = _jsonable(letter.target_config)
        _finite_or_refused(enriched_alert)
        _finite_or_refused(target_config)
        values: dict[str, Any] = {
            **ids,
            "fingerprint": _storable(letter.fingerprint),
            "target_name": _storable(letter.target_name),
            "target_type": _storable(letter.target_type),
            "enriched_alert": enriched_alert,
            "target_config": target_config,
            "error_message": _storable(letter.error_message),
            "error_type": ErrorType(letter.error_type).value,
            "retry_count": letter.retry_count,
            "last_retry_at": letter.last_retry_at,
            "priority": Priority(letter.priority).value,
            "failed_at": letter.failed_at,
            "replayed": letter.replayed,
            "replayed_at": letter.replayed_at,
            "replay_result": letter.replay_result.value if letter.replay_result else None,
            "delivered_via": letter.delivered_via,
        }
        # Without them the database's clock fills them in.
        if letter.created_at is not None:
            values["created_at"] = letter.created_at
        if letter.updated_at is not None:
            values["updated_at"] = letter.updated_at
        return values

    def _insert(self, values: dict[str, Any]) -> bool:
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(publishing_dlq).values(values).on_conflict_do_nothing(index_elements=["job_id"])
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt).rowcount == 1
        except (sa.exc.StatementError, RecursionError, OverflowError, ValueError) as exc:
            reason = _refusal(exc)
            if reason is not None:
                raise _Refused(reason) from exc
            if not _is_unreachable(exc):
                raise
            raise _unavailable(exc, "dead-letter") from exc

    def read(self, query: DLQFilter, limit: int = 100, offset: int = 0) -> tuple[list[DeadLetter], int]:
        limit, offset = page_bounds(limit, offset)
        where = _where(query)
        page = (
            sa.select(publishing_dlq)
            .where(*where)
            .order_by(publishing_dlq.c.failed_at.desc(), publishing_dlq.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(publishing_dlq).where(*where)
        with self._begin() as conn:
            rows = conn.execute(page).mappings().all()
            total = conn.execute(count).scalar_one()
        return [_letter(row) for row in rows], total

    def _select_one(self, conn: Connection, letter_id: uuid.UUID) -> DeadLetter | None:
        row = (
            conn.execute(sa.select(publishing_dlq).where(publishing_dlq.c.id == letter_id)).mappings().first()
        )
        return _letter(row) if row is not None else None

    def get(self, letter_id: str) -> DeadLetter:
        key = row_key(letter_id)
        with self._begin() as conn:
            letter = self._select_one(conn, key)
        if letter is None:
            raise not_found(letter_id)
        return letter

    def claim_for_replay(self, letter_id: str, replay_job_id: str, now: datetime) -> DeadLetter:
        key = row_key(letter_id)
        c = publishing_dlq.c
        # One conditional UPDATE is the claim: of concurrent callers exactly one matches.
        claim = (
            sa.update(publishing_dlq)
            .where(c.id == key, c.replayed == sa.false())
            .values(replayed=True, replayed_at=now, replay_job_id=parse_id(replay_job_id), updated_at=now)
        )
        with self._begin() as conn:
            claimed = conn.execute(claim).rowcount == 1
            letter = self._select_one(conn, key)
        if letter is None:
            raise not_found(letter_id)
        if not claimed:
            raise AlreadyReplayedError(letter.id, replay_details(letter))
        return letter

    def release_claim(self, letter_id: str, replay_job_id: str, now: datetime) -> None:
        c = publishing_dlq.c
        stmt = (
            sa.update(publishing_dlq)
            .where(c.id == row_key(letter_id), c.replay_job_id == parse_id(replay_job_id))
            .values(
                replayed=False,
                replayed_at=None,
                replay_job_id=None,
                replay_result=ReplayResult.SKIPPED.value,
                updated_at=now,
            )
        )
        with self._begin() as conn:
            conn.execute(stmt)

    def set_replay_result(self, letter_id: str, result: ReplayResult, now: datetime) -> None:
        """Raises ``NotFoundError`` when there is no such row."""
        key = row_key(letter_id)
        stmt = (
            sa.update(publishing_dlq)
            .where(publishing_dlq.c.id == key)
            .values(replay_result=ReplayResult(result).value, updated_at=now)
        )
        with self._begin() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise not_found(letter_id)

    def set_replay_result_by_job(self, replay_job_id: str, result: ReplayResult, now: datetime) -> None:
        """A job that no row names (not a replay, or its row purged since) changes nothing."""
        try:
            key = parse_id(replay_job_id)
        except ValueError:
            return
        stmt = (
            sa.update(publishing_dlq)
            .where(publishing_dlq.c.replay_job_id == key)
            .values(replay_result=ReplayResult(result).value, updated_at=now)
        )
        with self._begin() as conn:
            conn.execute(stmt)

    def purge(self, older_than: datetime, replayed_only: bool = False) -> int:
        """Delete rows that failed before ``older_than`` (only replayed ones if asked)."""
        stmt = sa.delete(publishing_dlq).where(publishing_dlq.c.failed_at < older_than)
        if replayed_only:
            stmt = stmt.where(publishing_dlq.c.replayed == sa.true())
        with self._begin() as conn:
            return conn.execute(stmt).rowcount

    def stats(self) -> DLQStats:
        c = publishing_dlq.c
        summary = sa.select(
            sa.func.count(),
            sa.func.min(c.failed_at),
            sa.func.max(c.failed_at),
            sa.func.coalesce(sa.func.sum(sa.case((c.replayed == sa.true(), 1), else_=0)), 0),
        )
        groups = sa.union_all(
            *(
                sa.select(sa.literal(name).label("dimension"), column.label("value"), sa.func.count())
                .group_by(column)
                .select_from(publishing_dlq)
                for name, column in (
                    ("error_type", c.error_type),
                    ("target", c.target_name),
                    ("priority", c.priority),
                )
            )
        )
        with self._begin() as conn:
            total, oldest, newest, replayed = conn.execute(summary).one()
            grouped = conn.execute(groups).all()
        by: dict[str, dict[str, int]] = {"error_type": {}, "target": {}, "priority": {}}
        for dimension, value, count in grouped:
            by[dimension][value] = count
        return DLQStats(
            total=total,
            by_error_type=by["error_type"],
            by_target=by["target"],
            by_priority=by["priority"],
            oldest=oldest,
            newest=newest,
            replayed=int(replayed),
        )

    def count_by_target(self) -> dict[str, int]:
        """Every row, replayed or not, by target: the ``dlq_size`` gauge."""
        c = publishing_dlq.c
        stmt = sa.select(c.target_name, sa.func.count()).group_by(c.target_name)
        with self._begin() as conn:
            return {target: count for target, count in conn.execute(stmt).all()}
