"""SQL databases for the contract suites: a SQLite file and a PostgreSQL database of their own,
each created by the project's Alembic migration, and engines that can reach nothing.

Context managers rather than fixtures, so that each suite scopes them as it needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import alembic.command
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import Engine

from publishing.adapters.sql import create_engine_for, publishing_dlq
from tests.support.services import private_postgres_db

ROOT = Path(__file__).resolve().parents[2]


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"), cmd_opts=argparse.Namespace(x=[f"url={url}"]))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    alembic.command.upgrade(config, "head")


@contextmanager
def sqlite_engine(directory: Path) -> Iterator[Engine]:
    # A directory that does not exist yet: create_engine_for has to make it.
    url = f"sqlite:///{directory / 'var' / 'dlq.db'}"
    migrate(url)
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_engine() -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database, dropped afterwards. Without a server it skips on
    a laptop and fails when ``CI`` is set, like every fixture of ``tests.support.services``."""
    with private_postgres_db() as url:
        migrate(url)
        engine = create_engine_for(url)
        try:
            yield engine
        finally:
            engine.dispose()


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(publishing_dlq))


# Port 1 refuses connections, so this needs no server and answers at once.
UNREACHABLE_POSTGRES_URL = "postgresql://postgres@127.0.0.1:1/publishing"


def unreachable_sqlite_url(directory: Path) -> str:
    """A SQLite file that cannot be opened: read-only, in a directory that does not exist."""
    return f"sqlite:///file:{directory / 'missing' / 'dlq.db'}?mode=ro&uri=true"
