"""A worker sizes its Redis connections to the jobs a process runs at once, even when its
services were built before it knew that number: Celery logs a warning at start (to a worker
run as root, say), and logging builds the services to learn which secrets to redact."""

from __future__ import annotations

import pytest
import redis

from publishing.adapters import capacity
from publishing.adapters.capacity import HEADROOM
from publishing.adapters.composition import services_for
from publishing.adapters.redis.batching import BatchingRedis
from publishing.settings import Settings
from workers.celery_app import create_celery_app, settings_of
from workers.observability import _use_pool


@pytest.fixture(autouse=True)
def no_pool_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity, "_slots", None)


def test_services_built_before_an_io_pool_was_known_are_built_again_sized_to_it() -> None:
    app = create_celery_app(Settings(redis_url="redis://127.0.0.1:6399/0"))
    settings = settings_of(app)
    early = services_for(settings)  # what a log line at start does
    assert type(early.redis) is redis.Redis

    _use_pool(app, "threads", 50)
    later = services_for(settings)
    assert later is not early
    # The jobs' pipelines share round trips, over at most a connection a slot and a few more.
    assert isinstance(later.redis, BatchingRedis)
    assert later.redis.connection_pool.max_connections == 50 + HEADROOM


def test_a_prefork_child_runs_one_job_and_sends_its_pipelines_alone() -> None:
    app = create_celery_app(Settings(redis_url="redis://127.0.0.1:6399/0"))
    _use_pool(app, "prefork", 8)
    client = services_for(settings_of(app)).redis
    assert not isinstance(client, BatchingRedis)
    assert client.connection_pool.max_connections == 1 + HEADROOM
