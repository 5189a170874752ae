"""Parked jobs with a real worker (docs/design.md (Retries)): a job deferred behind an open
breaker waits in Redis, not in the worker (no ETA message held, nothing in kombu's
``unacked``), and is delivered after the breaker half-opens; a message delivered again after
its job was parked (a worker killed between the park and the ack) loses nothing and parks
the job once; the reconciler counts a parked job as on the broker. A backlog behind an open
breaker is held in Redis: it costs a few task runs an open period, not one a job, and all of
it is delivered once the target recovers; a page with a fallback still takes it on time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from publishing.adapters.broker import CeleryEnqueuer
from publishing.adapters.redis.parking import RedisParkingLot
from publishing.adapters.redis.reconcile import RedisReconciler
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.job import Job
from publishing.testing import RecordingEnqueuer
from publishing.tracking import JobState
from tests.integration.test_reconciler import job as tracked_job
from tests.integration.test_reconciler import track
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert, with_fallback

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

OPEN_S = 6.0
BACKLOG = 200


def deferrals(pipeline: Pipeline, ids: set[str]) -> int:
    """Deferrals so far, over the jobs: each run that deferred a job counted one in the message
    kept for its next run (docs/design.md (Reconciler))."""
    kept = [pipeline.tracker.message(i) for i in ids]
    return sum(int(m["deferrals"]) for m in kept if m is not None)


def held_by_workers(pipeline: Pipeline) -> list[object]:
    """The countdown (ETA) messages every worker holds, as the workers report them."""
    # A loaded machine can miss one broadcast's window: ask again before concluding.
    replies = wait_until(lambda: pipeline.app.control.inspect(timeout=2.0).scheduled(), timeout_s=20)
    return [entry for entries in replies.values() for entry in entries]


def parked_behind_an_open_breaker(tmp_path: Path, redis_url: str, database_url: str, target: HttpTarget):  # type: ignore[no-untyped-def]
    pipeline = Pipeline(
        tmp_path,
        redis_url,
        database_url,
        [{"name": "hook", "type": "webhook", "url": target.url}],
        PUBLISHING_BREAKER_FAILURE_THRESHOLD="1",
        PUBLISHING_BREAKER_OPEN_TIMEOUT_S=str(OPEN_S),
    )
    pipeline.worker(concurrency=2)
    lot = RedisParkingLot(pipeline.redis, pipeline.settings.key_prefix)
    pipeline.breakers.record_failure("hook", pipeline.settings.breaker, None)
    tripped = time.monotonic()
    (submitted,) = pipeline.submit(alerts(am_alert("Down")), ["hook"]).jobs
    wait_until(lambda: submitted.id in lot.parked_ids(), timeout_s=10)
    return pipeline, lot, submitted.id, tripped


@pytest.mark.slow
def test_a_job_behind_an_open_breaker_waits_in_redis_and_is_delivered_after_it_half_opens(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(200)]) as target:
        pipeline, lot, job_id, tripped = parked_behind_an_open_breaker(
            tmp_path, fresh_redis, dlq_database_url, target
        )
        try:
            assert pipeline.job(job_id).state is JobState.DEFERRED
            assert pipeline.redis.hlen("unacked") == 0
            assert all(pipeline.redis.llen(q) == 0 for q in ("high", "medium", "low"))
            assert held_by_workers(pipeline) == []
            assert target.received == []

            snapshot = pipeline.wait_state(job_id, JobState.SUCCEEDED, timeout_s=OPEN_S + 30)
            assert time.monotonic() - tripped >= OPEN_S
            (request,) = target.received
            assert request.headers["Idempotency-Key"] == job_id
            assert snapshot.retry_count == 0  # a deferral spends no retry
            assert lot.count() == 0
        finally:
            pipeline.close()


@pytest.mark.slow
def test_a_message_delivered_again_after_its_job_was_parked_loses_nothing_and_parks_it_once(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    # The park is one script and the message is acknowledged only after it: a worker killed
    # in between has its message delivered again by kombu, which is what is sent here.
    with HttpTarget([Reply(200)]) as target:
        pipeline, lot, job_id, _ = parked_behind_an_open_breaker(
            tmp_path, fresh_redis, dlq_database_url, target
        )
        try:
            kept = pipeline.tracker.message(job_id)
            assert kept is not None
            original = Job.from_message(kept).evolve(deferrals=0, deferred_since=None)
            CeleryEnqueuer(pipeline.app).enqueue(original)
            wait_until(lambda: pipeline.redis.llen("high") == 0 and pipeline.redis.hlen("unacked") == 0)
            assert lot.parked_ids() == {job_id} and lot.count() == 1

            pipeline.wait_state(job_id, JobState.SUCCEEDED, timeout_s=OPEN_S + 30)
            time.sleep(1.0)  # a second copy, had one been parked, would be due by now
            assert [r.headers["Idempotency-Key"] for r in target.received] == [job_id]
            assert pipeline.dlq_rows() == []
        finally:
            pipeline.close()


def test_the_reconciler_leaves_a_parked_job_to_its_mover(fresh_redis: str) -> None:
    client = redis.Redis.from_url(fresh_redis)
    try:
        tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
        lot = RedisParkingLot(client, "t")
        enqueuer = RecordingEnqueuer()
        reconciler = RedisReconciler(
            client, tracker, enqueuer, None, parking=lot, prefix="t", grace_s=0.2, confirm_s=0.05
        )
        parked, lost = tracked_job("parked"), tracked_job("lost")
        for j in (parked, lost):
            track(tracker, j, JobState.DEFERRED)
        lot.park(parked, 3600)
        time.sleep(0.3)
        report = reconciler.run_once()
        assert report is not None and report.resent == ["lost"]
        assert [j.job_id for j in enqueuer.sent] == ["lost"]
    finally:
        client.close()


@pytest.mark.slow
def test_a_backlog_behind_an_open_breaker_costs_a_few_runs_an_open_period_and_is_all_delivered(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(503)]) as target:
        pipeline = Pipeline(
            tmp_path,
            fresh_redis,
            dlq_database_url,
            [{"name": "hook", "type": "webhook", "url": target.url}],
            PUBLISHING_BREAKER_FAILURE_THRESHOLD="1",
            PUBLISHING_BREAKER_OPEN_TIMEOUT_S=str(OPEN_S),
            PUBLISHING_MAX_RETRIES="30",
            PUBLISHING_RETRY_MAX_BACKOFF_S="1",
        )
        try:
            pipeline.worker(concurrency=2)
            lot = RedisParkingLot(pipeline.redis, pipeline.settings.key_prefix)
            pipeline.breakers.record_failure("hook", pipeline.settings.breaker, None)
            raw = [am_alert(f"Down{i}", severity="warning") for i in range(BACKLOG)]
            ids = {j.id for j in pipeline.submit(alerts(*raw), ["hook"]).jobs}
            assert len(ids) == BACKLOG
            wait_until(lambda: lot.count() == BACKLOG, timeout_s=120)

            # Two open periods, every probe failing: the held jobs stay in Redis, they do not
            # each run again to find the breaker open.
            before = deferrals(pipeline, ids)
            assert before >= BACKLOG
            time.sleep(2 * OPEN_S + 1)
            during = deferrals(pipeline, ids) - before
            assert during < BACKLOG / 4, f"{during} deferrals in two open periods"
            assert all(pipeline.job(i).state is JobState.DEFERRED for i in ids)
            assert ids <= lot.parked_ids() | {r.headers["Idempotency-Key"] for r in target.received}

            target.script([Reply(200)])
            wait_until(
                lambda: all(pipeline.job(i).state is JobState.SUCCEEDED for i in ids), timeout_s=OPEN_S + 90
            )
            delivered = [r.headers["Idempotency-Key"] for r in target.received]
            assert set(delivered) == ids
            assert lot.count() == 0 and pipeline.dlq_rows() == []
        finally:
            pipeline.close()


@pytest.mark.slow
def test_a_page_with_a_fallback_takes_it_on_time_while_a_backlog_is_held(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    fallback_after_s = 8.0
    with HttpTarget([Reply(503)]) as primary, HttpTarget() as backup:
        targets = with_fallback(primary.url, backup.url, fallback_after_s=fallback_after_s)
        pipeline = Pipeline(
            tmp_path,
            fresh_redis,
            dlq_database_url,
            targets,
            PUBLISHING_BREAKER_FAILURE_THRESHOLD="1",
            PUBLISHING_BREAKER_OPEN_TIMEOUT_S="120",
        )
        try:
            pipeline.worker(concurrency=2)
            lot = RedisParkingLot(pipeline.redis, pipeline.settings.key_prefix)
            pipeline.breakers.record_failure("primary", pipeline.settings.breaker, None)
            tripped = time.monotonic()
            waiting = {
                j.id
                for j in pipeline.submit(
                    alerts(*[am_alert(f"Later{i}", severity="warning") for i in range(20)]), ["primary"]
                ).jobs
            }
            wait_until(lambda: lot.count() == len(waiting), timeout_s=60)
            (page,) = pipeline.submit(alerts(am_alert("PageMe", severity="critical")), ["primary"]).jobs

            snapshot = pipeline.wait_state(page.id, JobState.SUCCEEDED, timeout_s=fallback_after_s + 20)
            assert time.monotonic() - tripped >= fallback_after_s
            assert snapshot.delivered_via == "backup"
            assert [r.json()["alert_name"] for r in backup.received] == ["PageMe"]
            assert all(pipeline.job(i).state is JobState.DEFERRED for i in waiting)
            assert primary.received == []
        finally:
            pipeline.close()
