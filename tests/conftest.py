from __future__ import annotations

from collections.abc import Iterator

import pytest

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
