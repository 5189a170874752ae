"""Per-process services: Redis client, HTTP session, database engine and the domain services
built on them. Built lazily in the process that uses them, so nothing crosses a fork."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from redis.sentinel import Sentinel
from requests.adapters import HTTPAdapter

from publishing.delivery import DeliveryService
from publishing.dlq_sql import SqlDeadLetterRepository, create_engine_for
from publishing.job import Job
from publishing.publisher import HttpPublisher
from publishing.retry import RetryPolicy
from publishing.settings import Settings
from publishing.targets import TargetRegistry
from workers.config import is_sentinel
from workers.redis_store import (
    RedisBreakerStore,
    RedisDeduplicator,
    RedisJobTracker,
    RedisOrderGate,
    RedisTargetHealth,
)

_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "health_check_interval": 25,
    "retry_on_timeout": True,
}


def redis_client(settings: Settings) -> redis.Redis:
    """A client for REDIS_URL; a ``sentinel://`` URL (Celery's form, ``;``-separated) gives a
    client that follows the master Sentinel names, through failovers."""
    if not is_sentinel(settings.redis_url):
        return redis.Redis.from_url(settings.redis_url, **_CLIENT_OPTIONS)
    hosts: list[tuple[str, int]] = []
    db, password = 0, None
    for part in settings.redis_url.split(";"):
        parts = urlsplit(part.strip())
        hosts.append((parts.hostname or "localhost", parts.port or 26379))
        if parts.path.strip("/").isdigit():
            db = int(parts.path.strip("/"))
        password = parts.password or password
    sentinel = Sentinel(hosts, socket_timeout=2, socket_connect_timeout=2)
    return sentinel.master_for(settings.redis_sentinel_master, db=db, password=password, **_CLIENT_OPTIONS)


def http_session() -> requests.Session:
    session = requests.Session()
    # Keep connections to each target alive across jobs; never retry inside requests: a
    # retry is a Celery retry with our countdown.
    adapter = HTTPAdapter(pool_connections=32, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    registry: TargetRegistry
    tracker: RedisJobTracker
    breakers: RedisBreakerStore
    deduplicator: RedisDeduplicator
    order_gate: RedisOrderGate
    health: RedisTargetHealth
    dead_letters: SqlDeadLetterRepository
    delivery: DeliveryService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        client = redis_client(settings)
        registry = TargetRegistry.from_path(settings.targets_path, time.monotonic)
        breakers = RedisBreakerStore(client, settings.key_prefix)
        order_gate = RedisOrderGate(client, prefix=settings.key_prefix, ttl_s=settings.tracking_ttl_s)
        publisher = HttpPublisher(http_session(), default_timeout_s=settings.http_timeout_s)

        def policy(job: Job) -> RetryPolicy:
            return settings.retry_policy(job.priority)

        return cls(
            settings=settings,
            redis=client,
            registry=registry,
            tracker=RedisJobTracker(
                client,
                prefix=settings.key_prefix,
                capacity=settings.tracking_capacity,
                ttl_s=settings.tracking_ttl_s,
            ),
            breakers=breakers,
            deduplicator=RedisDeduplicator(client, settings.key_prefix),
            order_gate=order_gate,
            health=RedisTargetHealth(client, settings.key_prefix),
            dead_letters=SqlDeadLetterRepository(create_engine_for(settings.database_url)),
            delivery=DeliveryService(
                registry,
                publisher,
                breakers,
                order_gate=order_gate,
                retry_policy=policy,
                breaker_config=settings.breaker,
                default_timeout_s=settings.http_timeout_s,
                clock=time.time,
            ),
        )


_lock = threading.Lock()
_services: dict[tuple[int, int], Services] = {}


def services_for(settings: Settings) -> Services:
    """The services of this process for these settings (rebuilt after a fork)."""
    key = (os.getpid(), id(settings))
    found = _services.get(key)
    if found is None:
        with _lock:
            found = _services.get(key)
            if found is None:
                found = _services[key] = Services.build(settings)
    return found
