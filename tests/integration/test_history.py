"""Delivery history with real workers, Redis and PostgreSQL: every attempt recorded and flushed
to the database off the hot path, read through the API, resent as a new job, pruned past
retention, and a database outage that costs delivery nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from api import create_app
from api.testing import TOKENS, bearer
from publishing.adapters.history_sql import SqlHistoryRepository, publishing_history, publishing_history_jobs
from publishing.adapters.redis.attempts import RedisHistoryQueue
from publishing.adapters.sql import create_engine_for
from publishing.history import AttemptRecord, AttemptResult, HistoryQuery
from publishing.priority import Priority
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

FAST_FLUSH = {"PUBLISHING_HISTORY_FLUSH_INTERVAL_S": "0.2"}


@pytest.fixture
def history_db(dlq_database_url: str) -> Iterator[SqlHistoryRepository]:
    engine = create_engine_for(dlq_database_url)
    with engine.begin() as conn:
        conn.execute(sa.delete(publishing_history))
        conn.execute(sa.delete(publishing_history_jobs))
    yield SqlHistoryRepository(engine)
    engine.dispose()


def api_client(pipeline: Pipeline) -> FlaskClient:
    settings = dataclasses.replace(pipeline.settings, api_tokens={t: r for r, t in TOKENS.items()})
    return create_app(settings).test_client()


def test_three_attempts_are_recorded_readable_and_resendable(
    fresh_redis: str, dlq_database_url: str, history_db: SqlHistoryRepository, tmp_path: Path
) -> None:
    with HttpTarget([Reply(503), Reply(503), Reply(200)]) as hook:
        targets = [{"name": "hook", "type": "webhook", "url": hook.url}]
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **FAST_FLUSH)
        try:
            pipeline.worker()
            (job,) = pipeline.submit(alerts(am_alert("DiskFull", instance="db-1")), ["hook"]).jobs
            pipeline.wait_state(job.id, JobState.SUCCEEDED)
            attempts = wait_until(
                lambda: len(history_db.attempts_of(job.id)) == 3 and history_db.attempts_of(job.id)
            )

            assert [a.attempt for a in attempts] == [1, 2, 3]
            assert [a.status_code for a in attempts] == [503, 503, 200]
            assert [a.result for a in attempts] == [
                AttemptResult.RETRY,
                AttemptResult.RETRY,
                AttemptResult.DELIVERED,
            ]
            assert attempts[0].excerpt is not None and "HTTP 503" in attempts[0].excerpt
            assert all(a.target == "hook" and a.via is None and a.duration_s > 0 for a in attempts)

            client = api_client(pipeline)
            answer = client.get(f"/api/v2/publishing/jobs/{job.id}/attempts", headers=bearer("reader"))
            assert answer.status_code == 200
            assert [a["status_code"] for a in answer.get_json()["attempts"]] == [503, 503, 200]

            listed = client.get(
                "/api/v2/publishing/history",
                query_string={"fingerprint": job.fingerprint, "target": "hook", "alertname": "DiskFull"},
                headers=bearer("reader"),
            ).get_json()
            assert listed["total"] == 3
            assert [a["status_code"] for a in listed["attempts"]] == [200, 503, 503]  # newest first
            since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            later = client.get(
                "/api/v2/publishing/history", query_string={"since": since}, headers=bearer("reader")
            )
            assert later.get_json() == {"attempts": [], "total": 0}

            delivered = attempts[2].id
            path = f"/api/v2/publishing/history/{delivered}/resend"
            assert client.post(path, headers=bearer("reader")).status_code == 403
            resent = client.post(path, headers=bearer("operator"))
            assert resent.status_code == 202
            new_job = resent.get_json()["job_id"]
            assert new_job != job.id
            pipeline.wait_state(new_job, JobState.SUCCEEDED)
            received = hook.wait_for(4)
            assert received[-1].json()["alert_name"] == "DiskFull"
            assert received[-1].headers["Idempotency-Key"] == new_job
            wait_until(lambda: len(history_db.attempts_of(new_job)) == 1)
            missing = client.post(
                f"/api/v2/publishing/history/{uuid.uuid4()}/resend", headers=bearer("operator")
            )
            assert missing.status_code == 404
        finally:
            pipeline.close()


def test_the_flusher_prunes_attempts_past_retention(
    fresh_redis: str, dlq_database_url: str, history_db: SqlHistoryRepository, tmp_path: Path
) -> None:
    now = datetime.now(UTC)

    def record(days_ago: float) -> AttemptRecord:
        return AttemptRecord(
            id=str(uuid.uuid4()), job_id=str(uuid.uuid4()), target="hook", via=None, attempt=1,
            attempted_at=now - timedelta(days=days_ago), result=AttemptResult.DELIVERED, status_code=200,
            duration_s=0.01, error_type=None, excerpt=None, fingerprint="fp", alert_name="Old",
            priority=Priority.LOW, alert={"alert": {}},
        )  # fmt: skip

    old, recent = record(15), record(1)
    history_db.append([old, recent])
    targets = [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}]
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **FAST_FLUSH)
    try:
        pipeline.worker()
        wait_until(lambda: history_db.query(HistoryQuery())[1] == 1)
        assert [r.id for r in history_db.query(HistoryQuery())[0]] == [recent.id]
    finally:
        pipeline.close()


def test_a_database_outage_holds_the_history_back_and_delivery_not_at_all(
    fresh_redis: str, dlq_database_url: str, history_db: SqlHistoryRepository, tmp_path: Path
) -> None:
    with HttpTarget() as hook:
        targets = [{"name": "hook", "type": "webhook", "url": hook.url}]
        down = "postgresql://postgres@127.0.0.1:1/publishing"
        pipeline = Pipeline(tmp_path, fresh_redis, down, targets, **FAST_FLUSH)
        try:
            pipeline.worker()
            jobs = pipeline.submit(alerts(*(am_alert(f"A{i}") for i in range(5))), ["hook"]).jobs
            for job in jobs:
                pipeline.wait_state(job.id, JobState.SUCCEEDED)
            queue = RedisHistoryQueue(pipeline.redis, pipeline.settings.key_prefix)
            wait_until(lambda: queue.depth() == 5)
        finally:
            pipeline.close()
        # The database back: the next worker's flusher moves what waited.
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **FAST_FLUSH)
        try:
            pipeline.worker()
            wait_until(lambda: history_db.query(HistoryQuery(target="hook"))[1] == 5)
            assert queue.depth() == 0
        finally:
            pipeline.close()
