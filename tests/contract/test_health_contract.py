"""Per-target health (``publishing.target_health.TargetHealthStore``), in memory and on
Redis."""

from __future__ import annotations

import pytest

from publishing.adapters.redis.health import RedisTargetHealth
from publishing.target_health import HealthEvent, TargetHealth, TargetHealthStore
from publishing.testing import InMemoryTargetHealth
from tests.contract.conftest import Backend


@pytest.fixture
def health(backend: Backend) -> TargetHealthStore:
    if backend.is_redis:
        return RedisTargetHealth(backend.redis, "t")
    return InMemoryTargetHealth()


def test_an_unknown_target_has_no_history(health) -> None:
    assert health.get("pd") == TargetHealth("pd")
    assert health.get("pd").success_rate is None


def test_events_are_counted_with_the_last_success_and_failure(health) -> None:
    health.record("pd", [HealthEvent.SUCCESS], 100.5)
    health.record("pd", [HealthEvent.FAILURE, HealthEvent.TRIPPED], 101.25, "HTTP 503")
    health.record("pd", [HealthEvent.DEFERRED], 102.0)
    health.record("pd", [HealthEvent.SUCCESS, HealthEvent.RECOVERED], 103.0)
    health.record("pd", [], 104.0)
    health.record("slack", [HealthEvent.FAILURE], 99.0)
    pd = health.get("pd")
    assert pd.counts == {"success": 2, "failure": 1, "tripped": 1, "deferred": 1, "recovered": 1}
    assert (pd.last_success_at, pd.last_failure_at, pd.last_error) == (103.0, 101.25, "HTTP 503")
    assert pd.breaker_history == [{"event": "recovered", "at": 103.0}, {"event": "tripped", "at": 101.25}]
    assert pd.success_rate == pytest.approx(2 / 3)
    assert health.get("slack").last_error is None


def test_the_breaker_history_keeps_the_newest_transitions(health) -> None:
    for i in range(60):
        health.record("pd", [HealthEvent.TRIPPED if i % 2 == 0 else HealthEvent.RECOVERED], float(i))
    history = health.get("pd").breaker_history
    assert len(history) == 50
    assert history[0] == {"event": "recovered", "at": 59.0}
    assert history[-1] == {"event": "tripped", "at": 10.0}
    assert health.get("pd").counts == {"tripped": 30, "recovered": 30}


@pytest.mark.redis
def test_a_targets_health_keys_expire_a_week_after_the_last_event(redis_url: str) -> None:
    import redis

    from publishing.adapters.redis.breaker import KEY_TTL_S
    from publishing.target_health import HealthEvent

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    health = RedisTargetHealth(client, "ttl")
    health.record("gone", [HealthEvent.FAILURE, HealthEvent.TRIPPED], 1.0, "boom")
    keys = client.keys("ttl:*")
    assert len(keys) == 2
    assert all(KEY_TTL_S - 5 < client.ttl(k) <= KEY_TTL_S for k in keys)
