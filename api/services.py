"""What the API's routes call: the domain services over their ports, built from settings with
Redis, SQLAlchemy and a producer-only Celery app, or handed in with in-memory fakes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from celery import Celery
from flask import Flask, current_app
from prometheus_client.registry import Collector

from publishing.breaker import BreakerStore
from publishing.dlq import DeadLetterRepository
from publishing.dlq_sql import SqlDeadLetterRepository, create_engine_for
from publishing.replay import Replayer, ReplayRunner, ReplayRunStore
from publishing.settings import Settings
from publishing.submission import SubmissionResult, Submitter
from publishing.target_health import TargetHealthStore
from publishing.targets import TargetRegistry
from publishing.tracking import Deduplicator, JobTracker
from workers.config import celery_config
from workers.enqueue import CeleryEnqueuer
from workers.queues import QueueDepth
from workers.redis_store import (
    RedisBreakerStore,
    RedisDeduplicator,
    RedisJobTracker,
    RedisOrderGate,
    RedisTargetHealth,
)
from workers.replay import CeleryReplayRunner, RedisReplayRunStore
from workers.runtime import redis_client

EXTENSION = "publishing.services"


class QueueInspector(Protocol):
    def depths(self, *, with_age: bool = False) -> list[QueueDepth]:
        """Waiting messages by queue (high, medium, low), optionally with the oldest's age."""
        ...

    def workers(self) -> list[str] | None:
        """Names of the workers that answered a ping; None when that could not be asked."""
        ...


class ReadinessChecker(Protocol):
    def check(self) -> dict[str, str]:
        """``{"redis": "ok" | "down: ...", "database": ...}``."""
        ...


@dataclass
class ApiServices:
    registry: TargetRegistry
    tracker: JobTracker
    deduplicator: Deduplicator
    submitter: Submitter
    dead_letters: DeadLetterRepository
    breakers: BreakerStore
    replayer: Replayer
    replay_runs: ReplayRunStore
    replay_runner: ReplayRunner
    queues: QueueInspector
    readiness: ReadinessChecker
    health: TargetHealthStore
    clock: Callable[[], float] = time.time
    # Metrics seams: counted submissions (jobs, duplicates, unrouted alerts) and rejections.
    observe_submission: Callable[[SubmissionResult], None] = lambda result: None
    observe_rejected: Callable[[int], None] = lambda count: None
    # Scrape-time collectors for GET /metrics (the fleet's queues, breakers, DLQ size).
    metric_collectors: tuple[Collector, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiServices:
        """Nothing connects here: Redis, the database and the broker connect on first use."""
        from api.broker import RedisQueueInspector
        from api.readiness import DependencyReadiness
        from workers import metrics

        client = redis_client(settings)
        engine = create_engine_for(settings.database_url)
        celery = producer_app(settings)
        registry = TargetRegistry.from_path(settings.targets_path, time.monotonic)
        tracker = RedisJobTracker(
            client,
            prefix=settings.key_prefix,
            capacity=settings.tracking_capacity,
            ttl_s=settings.tracking_ttl_s,
        )
        deduplicator = RedisDeduplicator(client, settings.key_prefix)
        order_gate = RedisOrderGate(client, prefix=settings.key_prefix, ttl_s=settings.tracking_ttl_s)
        enqueuer = CeleryEnqueuer(celery)
        dead_letters = SqlDeadLetterRepository(engine)
        breakers = RedisBreakerStore(client, settings.key_prefix)
        return cls(
            registry=registry,
            tracker=tracker,
            deduplicator=deduplicator,
            submitter=Submitter(
                registry,
                tracker,
                deduplicator,
                enqueuer,
                order_gate=order_gate,
                dedup_window_s=settings.dedup_window_s,
                clock=time.time,
            ),
            dead_letters=dead_letters,
            breakers=breakers,
            replayer=Replayer(
                dead_letters,
                registry,
                tracker,
                deduplicator,
                enqueuer,
                order_gate=order_gate,
                clock=time.time,
            ),
            replay_runs=RedisReplayRunStore(client, settings.key_prefix),
            replay_runner=CeleryReplayRunner(celery),
            queues=RedisQueueInspector(client, celery),
            readiness=DependencyReadiness(client, engine),
            health=RedisTargetHealth(client, settings.key_prefix),
            observe_submission=metrics.observe_submission,
            observe_rejected=metrics.observe_rejected_submission,
            metric_collectors=(metrics.FleetCollector(client, registry, breakers, dead_letters, tracker),),
        )


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only sends, by task name: the API registers and imports no task."""
    app = Celery("publishing", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.publishing_settings = settings
    return app


def services() -> ApiServices:
    return services_of(current_app)


def services_of(app: Flask) -> ApiServices:
    return cast(ApiServices, app.extensions[EXTENSION])


def settings() -> Settings:
    return cast(Settings, current_app.config["PUBLISHING_SETTINGS"])
