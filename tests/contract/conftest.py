"""One suite a port, run over the in-memory fake and the Redis adapter alike.

Time is the one thing the two do not share: the fakes read a ``FrozenClock``, the Redis
scripts read Redis's clock. ``Backend.advance`` moves whichever one the store reads, so the
tests are written once, with tolerances that hold for a real clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from publishing.testing import FrozenClock
from tests.support.services import flush_private_db

MEMORY, REDIS = "memory", "redis"

# How far a wait measured on Redis's clock may be from the exact one: a round trip or two.
TOLERANCE_S = 0.05


@dataclass(frozen=True)
class Backend:
    kind: str
    clock: FrozenClock
    client: redis.Redis | None = None

    @property
    def is_redis(self) -> bool:
        return self.client is not None

    @property
    def redis(self) -> redis.Redis:
        assert self.client is not None, "only the Redis backend has a client"
        return self.client

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for the store: a real sleep for Redis's clock."""
        if self.is_redis:
            time.sleep(seconds)
        else:
            self.clock.advance(seconds)


@pytest.fixture
def fresh_redis(redis_url: str) -> Iterator[str]:
    """The private Redis database, emptied before the test (it fails, not skips, in CI when
    Redis is missing: see ``tests.support.services.missing``)."""
    flush_private_db(redis_url)
    yield redis_url


@pytest.fixture(params=[MEMORY, pytest.param(REDIS, marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The fake's clock, or a client of a flushed private Redis database."""
    if request.param == MEMORY:
        yield Backend(MEMORY, FrozenClock())
        return
    url = request.getfixturevalue("fresh_redis")
    client = redis.Redis.from_url(url)
    yield Backend(REDIS, FrozenClock(), client)
    client.close()
