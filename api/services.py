"""What the API's routes call: the domain services over their ports, built from settings with
Redis, SQLAlchemy and a producer-only Celery app, or handed in with in-memory fakes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from flask import Flask, current_app
from prometheus_client.registry import Collector

from publishing.adapters import metrics
from publishing.adapters.composition import build_services
from publishing.breaker import BreakerStore
from publishing.dlq import DeadLetterRepository
from publishing.replay import Replayer, ReplayRunner, ReplayRunStore
from publishing.routing import QueueDepth
from publishing.settings import Settings
from publishing.submission import SubmissionResult, Submitter
from publishing.target_health import TargetHealthStore
from publishing.targets import TargetRegistry
from publishing.tracking import Deduplicator, JobTracker

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
        built = build_services(settings)
        return cls(
            registry=built.registry,
            tracker=built.tracker,
            deduplicator=built.deduplicator,
            submitter=built.submitter,
            dead_letters=built.dead_letters,
            breakers=built.breakers,
            replayer=built.replayer,
            replay_runs=built.replay_runs,
            replay_runner=built.replay_runner,
            queues=built.queues,
            readiness=built.readiness,
            health=built.health,
            observe_submission=metrics.observe_submission,
            observe_rejected=metrics.observe_rejected_submission,
            metric_collectors=(
                metrics.FleetCollector(
                    built.redis, built.registry, built.breakers, built.dead_letters, built.tracker
                ),
            ),
        )


def services() -> ApiServices:
    return services_of(current_app)


def services_of(app: Flask) -> ApiServices:
    return cast(ApiServices, app.extensions[EXTENSION])


def settings() -> Settings:
    return cast(Settings, current_app.config["PUBLISHING_SETTINGS"])
