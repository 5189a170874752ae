"""The bulk replay task on real Redis and PostgreSQL, called in this process with the
producer app (no worker): its progress hash, its wait while ``high`` has a backlog, and a
redelivered page that must not run twice."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from publishing.adapters.broker import CeleryEnqueuer
from publishing.adapters.redis.dedup import RedisDeduplicator
from publishing.adapters.redis.queues import pending
from publishing.adapters.redis.replay_runs import RUN_TTL_S, RedisReplayRunStore
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter
from publishing.formatters import format_payload
from publishing.job import Job
from publishing.priority import Priority
from publishing.replay import Replayer, ReplayRun, RunState
from publishing.target_config import parse_target
from publishing.testing.broker import RecordingEnqueuer
from tests.support.pipeline import Pipeline
from workers.replay import HIGH_BACKLOG_LIMIT, replay_batch

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def pipeline(fresh_redis: str, dlq_database_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    targets = [{"name": "alpha-hook", "type": "webhook", "url": "http://127.0.0.1:9/alpha"}]
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
    yield pipeline
    pipeline.close()


def row(minutes_ago: int, severity: str = "critical") -> DeadLetter:
    return DeadLetter(
        id=str(uuid.uuid4()),
        job_id=str(uuid.uuid4()),
        fingerprint=f"fp-{minutes_ago}",
        target_name="alpha-hook",
        target_type="webhook",
        enriched_alert={
            "alert": {
                "alert_name": "DiskFull",
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": severity},
                "starts_at": "2026-01-01T00:00:00Z",
            }
        },
        target_config={"name": "alpha-hook"},
        error_message="HTTP 400",
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority.HIGH if severity == "critical" else Priority.LOW,
        failed_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )


def new_run(pipeline: Pipeline) -> ReplayRun:
    replayer = Replayer(
        pipeline.dead_letters,
        pipeline.registry,
        pipeline.tracker,
        RedisDeduplicator(pipeline.redis, pipeline.settings.key_prefix),
        CeleryEnqueuer(pipeline.app),
        clock=lambda: datetime.now(UTC).timestamp(),
    )
    run = replayer.new_run(DLQFilter(target="alpha-hook"), dry_run=False)
    RedisReplayRunStore(pipeline.redis, pipeline.settings.key_prefix).save(run)
    return run


def messages(pipeline: Pipeline, queue: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in pipeline.redis.lrange(queue, 0, -1)]


def test_a_page_replays_each_row_to_its_own_priority_and_the_progress_lives_in_redis(pipeline) -> None:
    for minutes, severity in ((1, "critical"), (2, "info"), (3, "critical")):
        pipeline.dead_letters.write(row(minutes, severity))
    run = new_run(pipeline)
    task = SimpleNamespace(app=pipeline.app)

    assert replay_batch(task, run.run_id, 0) == "done"  # type: ignore[arg-type]
    store = RedisReplayRunStore(pipeline.redis, pipeline.settings.key_prefix)
    progress = store.get(run.run_id)
    assert progress is not None
    assert (progress.state, progress.done, progress.total) == (RunState.DONE, 3, 3)
    assert 0 < pipeline.redis.ttl(f"{pipeline.settings.key_prefix}:replay:{run.run_id}") <= RUN_TTL_S
    assert (pending(pipeline.redis, "high"), pending(pipeline.redis, "low")) == (2, 1)
    assert all(r.replayed for r in pipeline.dlq_rows())


def test_a_page_waits_while_high_has_a_backlog(pipeline) -> None:
    pipeline.dead_letters.write(row(1))
    run = new_run(pipeline)
    task = SimpleNamespace(app=pipeline.app)
    pipeline.redis.lpush("high", *[b"{}"] * (HIGH_BACKLOG_LIMIT + 1))

    assert replay_batch(task, run.run_id, 0) == "waiting"  # type: ignore[arg-type]
    (later,) = messages(pipeline, "low")
    assert later["headers"]["task"] == "publishing.replay_batch"
    assert later["headers"]["eta"] is not None
    assert not pipeline.dlq_rows()[0].replayed

    pipeline.redis.delete("high")
    assert replay_batch(task, run.run_id, 0) == "done"  # type: ignore[arg-type]
    assert pipeline.dlq_rows()[0].replayed


def test_a_redelivered_page_does_nothing(pipeline) -> None:
    for minutes in range(3):
        pipeline.dead_letters.write(row(minutes + 1))
    run = new_run(pipeline)
    task = SimpleNamespace(app=pipeline.app)
    assert replay_batch(task, run.run_id, 0) == "done"  # type: ignore[arg-type]
    sent = pending(pipeline.redis, "high")

    assert replay_batch(task, run.run_id, 0) == "done"  # type: ignore[arg-type]
    assert pending(pipeline.redis, "high") == sent
    assert replay_batch(task, "no-such-run", 0) == "missing"  # type: ignore[arg-type]


def test_a_replayed_alertmanager_alert_keeps_its_envelope(pipeline) -> None:
    envelope = {"receiver": "team-storage", "externalURL": "https://am.example.com", "truncatedAlerts": 0}
    letter = row(1)
    letter = dataclasses.replace(letter, enriched_alert={**letter.enriched_alert, "envelope": envelope})
    pipeline.dead_letters.write(letter)
    enqueuer = RecordingEnqueuer()
    replayer = Replayer(
        pipeline.dead_letters,
        pipeline.registry,
        pipeline.tracker,
        RedisDeduplicator(pipeline.redis, pipeline.settings.key_prefix),
        enqueuer,
        clock=lambda: datetime.now(UTC).timestamp(),
    )
    job = replayer.replay_one(letter.id)
    assert [j.job_id for j in enqueuer.sent] == [job.job_id]
    assert job.alert.envelope == envelope
    target = parse_target(
        {"name": "am", "type": "webhook", "format": "alertmanager", "url": "http://127.0.0.1:9/am"}
    )
    body = format_payload(
        target, Job.from_message(json.loads(json.dumps(job.to_message()))).alert, job.job_id
    )
    assert (body["receiver"], body["externalURL"]) == ("team-storage", "https://am.example.com")
