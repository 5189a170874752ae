"""Access to the real Redis and PostgreSQL the tests run against.

A test that needs a service skips when it is missing on a laptop, and fails when ``CI`` is
set: in CI a missing service is a broken build, not a reason to test less.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
import sqlalchemy as sa

REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
_LOCK_KEY = "publishing-tests:lock"
_LOCK_TTL_S = 3600


def missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not available: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def private_redis_db() -> Iterator[str]:
    """A Redis database (1..15) that no other concurrent test session holds, flushed."""
    try:
        probe = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=2)
        probe.ping()
    except redis.RedisError as exc:
        missing(f"Redis at {REDIS_HOST}:{REDIS_PORT}", exc)
    token = uuid.uuid4().hex
    for db in range(1, 16):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        if client.set(_LOCK_KEY, token, nx=True, ex=_LOCK_TTL_S):
            client.flushdb()
            client.set(_LOCK_KEY, token, ex=_LOCK_TTL_S)
            try:
                yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
            finally:
                client.flushdb()
            return
    pytest.fail("every Redis test database (1..15) is held by another test session")


@contextmanager
def private_postgres_db() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"publishing_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        missing("PostgreSQL", exc)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flush_private_db(url: str) -> None:
    """Empty a database that ``private_redis_db`` handed out, keeping it held."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.set(_LOCK_KEY, "held", ex=_LOCK_TTL_S)
