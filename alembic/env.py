"""Alembic environment for the dead-letter table. The URL comes from ``-x url=...``, else
``DATABASE_URL``, else the SQLite default under ``var/``; PostgreSQL URLs get psycopg2."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

# The history tables register on the same metadata; autogenerate must see them too.
import publishing.adapters.history_sql  # noqa: F401
from publishing.adapters.sql import create_engine_for, metadata
from publishing.settings import DEFAULT_DATABASE_URL, normalise_database_url

config = context.config
# Programmatic callers (the tests) keep their own logging by setting this to False.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    return normalise_database_url(url)


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine_for(database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite alters a table by copying it; batch mode does that for us.
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
