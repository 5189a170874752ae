from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.private_services import PrivateRedis
from tests.support.services import private_postgres_db, private_redis_db


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private, flushed Redis database on the real local server."""
    with private_redis_db() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the real local server, dropped at the end."""
    with private_postgres_db() as url:
        yield url


@pytest.fixture
def aof_redis() -> Iterator[PrivateRedis]:
    """A private ``redis-server`` of its own, with its append-only file: one a fault case may
    kill and start again."""
    server = PrivateRedis(appendonly=True)
    server.start()
    yield server
    server.destroy()
