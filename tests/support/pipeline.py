"""The product as the API drives it, for integration tests: settings from an environment,
a producer-side Celery app, the Redis-backed submitter and tracking, and worker processes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery

from publishing.adapters.broker import CeleryEnqueuer
from publishing.adapters.redis.breaker import RedisBreakerStore
from publishing.adapters.redis.client import redis_client
from publishing.adapters.redis.dedup import RedisDeduplicator
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for
from publishing.adapters.target_files import registry_from_path
from publishing.alert import EnrichedAlert, parse_alertmanager
from publishing.dlq import DeadLetter, DLQFilter
from publishing.settings import Settings
from publishing.submission import SubmissionResult, Submitter
from publishing.tracking import JobSnapshot, JobState
from tests.support.fleet import WorkerProcess, wait_until, write_targets
from workers.celery_app import create_celery_app

FAST_RETRIES = {
    "PUBLISHING_RETRY_BASE_S": "0.2",
    "PUBLISHING_RETRY_JITTER_S": "0.05",
    "PUBLISHING_RETRY_MAX_BACKOFF_S": "2",
    "PUBLISHING_RETRY_AFTER_MAX_S": "5",
    "PUBLISHING_BREAKER_OPEN_TIMEOUT_S": "2",
    "PUBLISHING_HTTP_TIMEOUT_S": "3",
    "PUBLISHING_VISIBILITY_TIMEOUT_S": "60",
}


def alertmanager_payload(*alerts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "publishing",
        "status": "firing",
        "groupKey": "{}:{}",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


def am_alert(name: str, severity: str = "critical", status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} is happening", "runbook_url": "https://runbooks.local/x"},
        "startsAt": "2026-11-28T10:00:00.123456789Z",
        "endsAt": "2026-11-28T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.local/graph",
    }


def alerts(*raw: Mapping[str, Any]) -> list[EnrichedAlert]:
    return parse_alertmanager(alertmanager_payload(*raw))


def with_fallback(primary_url: str, backup_url: str, **primary: Any) -> list[dict[str, Any]]:
    """A webhook target ``primary`` whose fallback is the webhook ``backup``; ``primary`` holds
    its further fields (``fallback_after_s``, ``fallback_priorities``...)."""
    return [
        {"name": "primary", "type": "webhook", "url": primary_url, "fallback": ["backup"], **primary},
        {"name": "backup", "type": "webhook", "url": backup_url},
    ]


class Pipeline:
    def __init__(
        self, tmp_path: Path, redis_url: str, database_url: str, targets: list[dict[str, Any]], **env: str
    ) -> None:
        self.tmp_path = tmp_path
        self.targets_file = write_targets(tmp_path / "targets.yaml", targets)
        self.env = {
            **FAST_RETRIES,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "PUBLISHING_TARGETS": str(self.targets_file),
            **env,
        }
        self.settings = Settings.from_env(self.env)
        self.app: Celery = create_celery_app(self.settings)
        self.redis = redis_client(self.settings)
        self.tracker = RedisJobTracker(
            self.redis, prefix=self.settings.key_prefix, capacity=10_000, ttl_s=3600
        )
        self.breakers = RedisBreakerStore(self.redis, self.settings.key_prefix)
        self.dead_letters = SqlDeadLetterRepository(create_engine_for(self.settings.database_url))
        self.registry = registry_from_path(self.settings.targets_path, time.monotonic)
        self.submitter = Submitter(
            self.registry,
            self.tracker,
            RedisDeduplicator(self.redis, self.settings.key_prefix),
            CeleryEnqueuer(self.app),
            order_gate=RedisOrderGate(self.redis, prefix=self.settings.key_prefix, ttl_s=3600),
            dedup_window_s=self.settings.dedup_window_s,
            clock=time.time,
        )
        self.workers: list[WorkerProcess] = []

    def worker(self, name: str = "w1", **options: Any) -> WorkerProcess:
        log_path = self.tmp_path / f"worker-{name}.log"
        worker = WorkerProcess(self.env, name=name, log_path=log_path, **options)
        self.workers.append(worker)
        worker.start()
        worker.wait_ready()
        return worker

    def submit(self, enriched: list[EnrichedAlert], targets: list[str] | None = None) -> SubmissionResult:
        return self.submitter.submit(enriched, targets)

    def job(self, job_id: str) -> JobSnapshot:
        snapshot = self.tracker.get(job_id)
        assert snapshot is not None, f"job {job_id} is not tracked"
        return snapshot

    def wait_state(self, job_id: str, *states: JobState, timeout_s: float = 20.0) -> JobSnapshot:
        wait_until(lambda: self.job(job_id).state in states, timeout_s)
        return self.job(job_id)

    def dlq_rows(self, **query: Any) -> list[DeadLetter]:
        rows, _ = self.dead_letters.read(DLQFilter(**query), limit=1000)
        return rows

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.app.close()
        self.redis.close()
