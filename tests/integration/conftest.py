from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tests.support.fleet import ROOT
from tests.support.services import flush_private_db


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"), cmd_opts=argparse.Namespace(x=[f"url={url}"]))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    migrate(postgres_url)
    return postgres_url


@pytest.fixture
def dlq_database_url(migrated_postgres_url: str) -> str:
    """The private PostgreSQL database with the DLQ migrated in, emptied before the test."""
    engine = sa.create_engine(migrated_postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM publishing_dlq"))
    engine.dispose()
    return migrated_postgres_url


@pytest.fixture
def fresh_redis(redis_url: str) -> Iterator[str]:
    """The private Redis database, emptied before the test (queues, breakers, tracking)."""
    flush_private_db(redis_url)
    yield redis_url


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
