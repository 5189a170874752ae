"""The composition root: the domain services over their adapters, built from ``Settings`` for
the API and for a worker alike. Built lazily in the process that uses them (after a fork),
so nothing crosses a fork; nothing connects until first used."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from publishing.adapters.broker import CeleryEnqueuer, CeleryReplayRunner, RedisQueueInspector, producer_app
from publishing.adapters.events import EventsConfigFile, EventSender
from publishing.adapters.history_sql import SqlHistoryRepository
from publishing.adapters.http import HttpPublisher, http_session
from publishing.adapters.publishers import RoutingPublisher
from publishing.adapters.readiness import DependencyReadiness
from publishing.adapters.redis.attempts import RedisAttemptLog, RedisEventMarks, RedisHistoryQueue
from publishing.adapters.redis.breaker import RedisBreakerStore, RedisGatedAdmission
from publishing.adapters.redis.client import redis_client, writes_together
from publishing.adapters.redis.dedup import RedisDeduplicator
from publishing.adapters.redis.grouping import RedisGroupStore
from publishing.adapters.redis.health import RedisTargetHealth
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.adapters.redis.parking import RedisParkingLot
from publishing.adapters.redis.replay_runs import RedisReplayRunStore
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.adapters.smtp import SmtpPublisher
from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for
from publishing.adapters.target_files import registry_from_path
from publishing.delivery import DeliveryService
from publishing.errors import UnknownTargetError
from publishing.job import Job
from publishing.plan import Timings
from publishing.replay import Replayer
from publishing.retry import RetryPolicy
from publishing.settings import Settings
from publishing.submission import Submitter
from publishing.targets import TargetRegistry, TargetType


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    celery: Celery
    registry: TargetRegistry
    tracker: RedisJobTracker
    breakers: RedisBreakerStore
    deduplicator: RedisDeduplicator
    order_gate: RedisOrderGate
    health: RedisTargetHealth
    dead_letters: SqlDeadLetterRepository
    delivery: DeliveryService
    enqueuer: CeleryEnqueuer
    submitter: Submitter
    replayer: Replayer
    replay_runs: RedisReplayRunStore
    replay_runner: CeleryReplayRunner
    queues: RedisQueueInspector
    readiness: DependencyReadiness
    attempts: RedisAttemptLog
    timings: Timings
    history: SqlHistoryRepository
    history_queue: RedisHistoryQueue
    event_marks: RedisEventMarks
    events: EventSender
    parking: RedisParkingLot


def build_services(settings: Settings, celery: Celery | None = None) -> Services:
    """``celery`` is the app that sends jobs: a worker's own, or a producer-only one."""
    client = redis_client(settings)
    engine = create_engine_for(settings.database_url)
    app = celery if celery is not None else producer_app(settings)
    registry = registry_from_path(settings.targets_path, time.monotonic)
    prefix = settings.key_prefix
    health = RedisTargetHealth(client, prefix)
    tracker = RedisJobTracker(
        client, prefix=prefix, capacity=settings.tracking_capacity, ttl_s=settings.tracking_ttl_s
    )
    breakers = RedisBreakerStore(client, prefix)
    deduplicator = RedisDeduplicator(client, prefix)
    order_gate = RedisOrderGate(client, prefix=prefix, ttl_s=settings.tracking_ttl_s)
    dead_letters = SqlDeadLetterRepository(engine)
    enqueuer = CeleryEnqueuer(app)
    history_queue = RedisHistoryQueue(client, prefix)
    event_marks = RedisEventMarks(client, prefix)

    def policy(job: Job) -> RetryPolicy:
        """The priority's policy, with the target's own retry knobs (of the fallback, on one)."""
        base = settings.retry_policy(job.priority)
        try:
            return registry.get(job.via or job.target).retry_policy(base)
        except UnknownTargetError:
            return base

    submitter = Submitter(
        registry,
        tracker,
        deduplicator,
        enqueuer,
        order_gate=order_gate,
        dedup_window_s=settings.dedup_window_s,
        clock=time.time,
        writes_together=lambda: writes_together(client),
    )
    return Services(
        settings=settings,
        redis=client,
        celery=app,
        registry=registry,
        tracker=tracker,
        breakers=breakers,
        deduplicator=deduplicator,
        order_gate=order_gate,
        health=health,
        dead_letters=dead_letters,
        delivery=DeliveryService(
            registry,
            RoutingPublisher(
                HttpPublisher(http_session(), default_timeout_s=settings.http_timeout_s),
                {TargetType.EMAIL: SmtpPublisher(default_timeout_s=settings.http_timeout_s)},
            ),
            breakers,
            order_gate=order_gate,
            admission=RedisGatedAdmission(client, order_gate, breakers, tracker),
            starts=tracker,
            groups=RedisGroupStore(
                client,
                prefix,
                tracker,
                history_queue if settings.history_enabled else None,
                ttl_s=settings.tracking_ttl_s,
            ),
            requeue=enqueuer,
            retry_policy=policy,
            breaker_config=settings.breaker,
            default_timeout_s=settings.http_timeout_s,
            clock=time.time,
        ),
        enqueuer=enqueuer,
        submitter=submitter,
        replayer=Replayer(
            dead_letters, registry, tracker, deduplicator, enqueuer, order_gate=order_gate, clock=time.time
        ),
        replay_runs=RedisReplayRunStore(client, prefix),
        replay_runner=CeleryReplayRunner(app),
        queues=RedisQueueInspector(client, app),
        readiness=DependencyReadiness(client, engine),
        attempts=RedisAttemptLog(client, tracker, health, history_queue, order_gate),
        timings=Timings(max_hold_s=settings.max_hold_s),
        history=SqlHistoryRepository(engine),
        history_queue=history_queue,
        event_marks=event_marks,
        events=EventSender(EventsConfigFile(settings.targets_path), registry, submitter, event_marks),
        parking=RedisParkingLot(client, prefix),
    )


_lock = threading.Lock()
_services: dict[tuple[int, int], Services] = {}


def services_for(settings: Settings, celery: Any = None) -> Services:
    """The services of this process for these settings (rebuilt after a fork)."""
    key = (os.getpid(), id(settings))
    found = _services.get(key)
    if found is None:
        with _lock:
            found = _services.get(key)
            if found is None:
                found = _services[key] = build_services(settings, celery)
    return found


def forget_services() -> None:
    """Build this process's services again at their next use, closing the Redis connections
    of those built so far: for services built before the worker knew how many jobs it runs at
    once (a log line at start builds them, for the secrets the redactor hides), whose
    connection pools that number sizes (``capacity``)."""
    with _lock:
        built = [s for key, s in _services.items() if key[0] == os.getpid()]
        for key in [key for key in _services if key[0] == os.getpid()]:
            del _services[key]
    for services in built:
        services.redis.close()
