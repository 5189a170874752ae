"""The Alembic migration on PostgreSQL and SQLite: up, down and up again, leaving exactly the
table, indexes and checks that ``publishing.adapters.sql`` describes."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from publishing.adapters.history_sql import SqlHistoryRepository, publishing_history
from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for, metadata, publishing_dlq
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter
from publishing.history import AttemptRecord, AttemptResult, HistoryQuery
from publishing.priority import Priority

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
TABLE = "publishing_dlq"
INDEXES = {
    "ix_publishing_dlq_job_id",
    "ix_publishing_dlq_target_name",
    "ix_publishing_dlq_error_type",
    "ix_publishing_dlq_priority",
    "ix_publishing_dlq_failed_at",
    "ix_publishing_dlq_fingerprint",
    "ix_publishing_dlq_unreplayed",
}
CHECKS = {
    "ck_publishing_dlq_error_type",
    "ck_publishing_dlq_priority",
    "ck_publishing_dlq_replay_result",
    "ck_publishing_dlq_retry_count",
    "ck_publishing_dlq_replayed",
}


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI), cmd_opts=argparse.Namespace(x=[f"url={url}"]))
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    # A schema of its own inside the session's private database, so that going down to base
    # and back never disturbs the table the repository tests use.
    postgres_url: str = request.getfixturevalue("postgres_url")
    schema = f"migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine_for(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def index_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            )
        else:
            rows = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        return {name for (name,) in rows if name.startswith("ix_publishing_dlq")}


def assert_created(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    assert TABLE in inspector.get_table_names()
    indexes = {index["name"]: index for index in inspector.get_indexes(TABLE)}
    assert set(indexes) == INDEXES == index_names(engine)
    assert indexes["ix_publishing_dlq_job_id"]["unique"]
    where = indexes["ix_publishing_dlq_unreplayed"]["dialect_options"][f"{engine.dialect.name}_where"]
    assert "replayed" in str(where)
    assert {check["name"] for check in inspector.get_check_constraints(TABLE)} == CHECKS
    assert inspector.get_pk_constraint(TABLE)["constrained_columns"] == ["id"]


def assert_removed(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    assert TABLE not in inspector.get_table_names()
    assert index_names(engine) == set()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            left = conn.execute(
                sa.text(
                    "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                    " WHERE n.nspname = current_schema() AND conname LIKE 'ck_publishing_dlq%'"
                )
            ).all()
        assert left == []


def test_upgrade_downgrade_upgrade(database_url: str, engine: Engine) -> None:
    config = alembic_config(database_url)
    assert TABLE not in sa.inspect(engine).get_table_names()

    alembic.command.upgrade(config, "head")
    assert_created(engine)

    alembic.command.downgrade(config, "base")
    assert_removed(engine)

    alembic.command.upgrade(config, "head")
    assert_created(engine)
    repo = SqlDeadLetterRepository(engine)
    letter = DeadLetter(
        id=str(uuid.uuid4()),
        job_id=str(uuid.uuid4()),
        fingerprint="fp",
        target_name="pd",
        target_type="pagerduty",
        enriched_alert={},
        target_config={},
        error_message="HTTP 400",
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority.LOW,
        failed_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    assert repo.write(letter)
    assert repo.read(DLQFilter())[1] == 1


def test_the_migration_builds_the_model(database_url: str, engine: Engine) -> None:
    alembic.command.upgrade(alembic_config(database_url), "head")

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []

    reflected = {column["name"]: column for column in sa.inspect(engine).get_columns(TABLE)}
    assert list(reflected) == [column.name for column in publishing_dlq.columns]
    for column in publishing_dlq.columns:
        assert reflected[column.name]["nullable"] == column.nullable, column.name
        # Compared as the DDL each renders: on SQLite a Uuid is a CHAR(32), on PostgreSQL a UUID.
        as_built = reflected[column.name]["type"].compile(dialect=engine.dialect)
        assert as_built == column.type.compile(dialect=engine.dialect), column.name


def test_alembic_has_one_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == ["0003"]
    assert script.get_revision("0003").down_revision == "0002"
    assert script.get_revision("0002").down_revision == "0001"
    assert script.get_revision("0001").down_revision is None


HISTORY_TABLES = {"publishing_history", "publishing_history_jobs"}
HISTORY_INDEXES = {
    "ix_publishing_history_fingerprint",
    "ix_publishing_history_alert_name",
    "ix_publishing_history_target",
    "ix_publishing_history_attempted_at",
    "ix_publishing_history_job_id",
}


def history_indexes(engine: Engine) -> set[str]:
    inspector = sa.inspect(engine)
    return {index["name"] for index in inspector.get_indexes("publishing_history") if index["name"]}


def test_0003_adds_and_removes_the_history(database_url: str, engine: Engine) -> None:
    config = alembic_config(database_url)
    alembic.command.upgrade(config, "0002")
    assert HISTORY_TABLES.isdisjoint(sa.inspect(engine).get_table_names())

    alembic.command.upgrade(config, "0003")
    assert HISTORY_TABLES.issubset(sa.inspect(engine).get_table_names())
    assert history_indexes(engine) == HISTORY_INDEXES
    assert sa.inspect(engine).get_pk_constraint("publishing_history")["constrained_columns"] == ["id"]

    alembic.command.downgrade(config, "0002")
    tables = set(sa.inspect(engine).get_table_names())
    assert HISTORY_TABLES.isdisjoint(tables)
    assert TABLE in tables  # the DLQ is left as it was

    alembic.command.upgrade(config, "head")
    repo = SqlHistoryRepository(engine)
    record = AttemptRecord(
        id=str(uuid.uuid4()),
        job_id=str(uuid.uuid4()),
        target="pd",
        via=None,
        attempt=1,
        attempted_at=datetime(2025, 3, 1, tzinfo=UTC),
        result=AttemptResult.DELIVERED,
        status_code=202,
        duration_s=0.1,
        error_type=None,
        excerpt=None,
        fingerprint="fp",
        alert_name="DiskFull",
        priority=Priority.HIGH,
        alert={"alert": {"alert_name": "DiskFull"}},
    )
    assert repo.append([record]) == 1
    assert repo.query(HistoryQuery())[1] == 1
    reflected = [column["name"] for column in sa.inspect(engine).get_columns("publishing_history")]
    assert reflected == [column.name for column in publishing_history.columns]
