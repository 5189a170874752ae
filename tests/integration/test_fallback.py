"""Fallback routes: while a target is down, its high jobs go to its fallback; medium jobs
wait for it, and new jobs use it again once it has recovered."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from publishing.classification import ErrorType
from publishing.tracking import JobState
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert, with_fallback

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

FALLBACK_AFTER_S = 3.0


def test_high_jobs_reach_the_fallback_while_medium_jobs_wait_for_the_primary(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(503)]) as primary, HttpTarget() as backup:
        targets = with_fallback(primary.url, backup.url, fallback_after_s=FALLBACK_AFTER_S)
        pipeline = Pipeline(
            tmp_path,
            fresh_redis,
            dlq_database_url,
            targets,
            PUBLISHING_BREAKER_FAILURE_THRESHOLD="2",
            PUBLISHING_BREAKER_OPEN_TIMEOUT_S="2",
            PUBLISHING_MAX_RETRIES="30",
            PUBLISHING_RETRY_MAX_BACKOFF_S="0.5",
        )
        try:
            pipeline.worker(concurrency=2)
            started = time.monotonic()
            (high,) = pipeline.submit(alerts(am_alert("PageMe", severity="critical")), ["primary"]).jobs
            (medium,) = pipeline.submit(alerts(am_alert("Later", severity="warning")), ["primary"]).jobs

            snapshot = pipeline.wait_state(high.id, JobState.SUCCEEDED, timeout_s=FALLBACK_AFTER_S + 15)
            assert time.monotonic() - started <= FALLBACK_AFTER_S + 5 + 2  # breaker trip included
            assert snapshot.delivered_via == "backup"
            assert [r.json()["alert_name"] for r in backup.received] == ["PageMe"]

            assert pipeline.job(medium.id).state is not JobState.SUCCEEDED
            primary.script([Reply(200)])
            pipeline.wait_state(medium.id, JobState.SUCCEEDED, timeout_s=20)
            assert pipeline.job(medium.id).delivered_via is None
            assert primary.received[-1].json()["alert_name"] == "Later"
            assert [r.json()["alert_name"] for r in backup.received] == ["PageMe"]

            (after,) = pipeline.submit(alerts(am_alert("Recovered", severity="critical")), ["primary"]).jobs
            assert pipeline.wait_state(after.id, JobState.SUCCEEDED).delivered_via is None
        finally:
            pipeline.close()


def test_a_high_job_that_fails_for_good_goes_to_the_fallback(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(400)]) as primary, HttpTarget([Reply(400)]) as backup:
        targets = with_fallback(primary.url, backup.url)
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
        try:
            pipeline.worker()
            (job,) = pipeline.submit(alerts(am_alert("Rejected")), ["primary"]).jobs
            pipeline.wait_state(job.id, JobState.DLQ)
            assert len(primary.received) == 1
            assert len(backup.received) == 1
            (row,) = pipeline.dlq_rows()
            assert row.target_name == "primary"
            assert row.delivered_via == "backup"
            assert row.error_type is ErrorType.PERMANENT
        finally:
            pipeline.close()


def test_a_page_arriving_just_after_its_target_tripped_waits_only_for_its_fallback(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    # The target tripped 2 s before the page came in; its fallback is due 1 s later, its
    # breaker half-opens only after 30 s. The page must not wait for the breaker.
    with HttpTarget([Reply(503)]) as primary, HttpTarget() as backup:
        targets = with_fallback(primary.url, backup.url, fallback_after_s=FALLBACK_AFTER_S)
        pipeline = Pipeline(
            tmp_path,
            fresh_redis,
            dlq_database_url,
            targets,
            PUBLISHING_BREAKER_FAILURE_THRESHOLD="1",
            PUBLISHING_BREAKER_OPEN_TIMEOUT_S="30",
            PUBLISHING_MAX_RETRIES="30",
        )
        try:
            pipeline.worker(concurrency=2)
            pipeline.submit(alerts(am_alert("Tripper", severity="warning")), ["primary"])
            primary.wait_for(1, timeout_s=20)
            tripped = time.monotonic()
            time.sleep(2.0)
            (page,) = pipeline.submit(alerts(am_alert("PageMe", severity="critical")), ["primary"]).jobs
            snapshot = pipeline.wait_state(page.id, JobState.SUCCEEDED, timeout_s=15)
            # Its fallback was due 3 s after the trip; 30 s would be the breaker's half-open.
            assert time.monotonic() - tripped < 10
            assert snapshot.delivered_via == "backup"
            assert [r.json()["alert_name"] for r in primary.received] == ["Tripper"]
        finally:
            pipeline.close()
