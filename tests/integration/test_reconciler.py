"""The reconciler's pass (docs/design.md (Reconciler)) on real Redis and PostgreSQL: a tracked
job whose message is on the broker nowhere is sent again under its id, and a replay claim
whose job never reached the broker is released."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from publishing.adapters.redis.reconcile import RedisReconciler
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for
from publishing.alert import parse_alertmanager
from publishing.dlq import ReplayResult
from publishing.job import Job
from publishing.priority import Priority
from publishing.testing import RecordingEnqueuer
from publishing.tracking import JobSnapshot, JobState
from tests.integration.test_dlq_sql import make_letter

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

GRACE_S = 0.3


def job(job_id: str) -> Job:
    raw = {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}
    (alert,) = parse_alertmanager({"alerts": [raw]})
    return Job(job_id, "hook", Priority.HIGH, alert, 1.0)


def track(tracker: RedisJobTracker, j: Job, state: JobState = JobState.QUEUED) -> None:
    snapshot = JobSnapshot(j.job_id, "fp", "A", j.target, j.priority, JobState.QUEUED, submitted_at=1.0)
    tracker.record_many([snapshot], {j.job_id: j.to_message()})
    if state is not JobState.QUEUED:
        tracker.update(j.job_id, state=state, message=j.to_message(), wait_s=0)


def kombu_message(job_id: str) -> str:
    return json.dumps({"body": "e30=", "headers": {"id": job_id, "task": "publishing.publish"}})


@pytest.fixture
def parts(fresh_redis: str, dlq_database_url: str):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(fresh_redis)
    tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
    enqueuer = RecordingEnqueuer()
    letters = SqlDeadLetterRepository(create_engine_for(dlq_database_url))
    reconciler = RedisReconciler(
        client, tracker, enqueuer, letters, prefix="t", grace_s=GRACE_S, confirm_s=0.05
    )
    yield client, tracker, enqueuer, letters, reconciler
    client.close()


def test_a_job_on_the_broker_nowhere_is_sent_again_with_the_same_id(parts) -> None:  # type: ignore[no-untyped-def]
    client, tracker, enqueuer, _, reconciler = parts
    lost, retrying, queued, held = job("lost"), job("retrying-lost"), job("in-queue"), job("held")
    track(tracker, lost)
    track(tracker, retrying, JobState.RETRYING)
    track(tracker, queued)
    track(tracker, held, JobState.DEFERRED)
    client.lpush("medium", kombu_message("in-queue"))
    client.hset("unacked", "tag-1", json.dumps([json.loads(kombu_message("held")), "", "high"]))
    assert reconciler.run_once().resent == []  # within the grace period
    time.sleep(GRACE_S + 0.1)
    report = reconciler.run_once()
    assert sorted(report.resent) == ["lost", "retrying-lost"]
    assert sorted(j.to_message()["job_id"] for j in enqueuer.sent) == ["lost", "retrying-lost"]
    assert {j.job_id: j for j in enqueuer.sent}["retrying-lost"] == retrying
    # Sent again just now: the next pass waits a grace period for it to show up.
    assert reconciler.run_once().resent == []


def test_one_pass_at_a_time(parts) -> None:  # type: ignore[no-untyped-def]
    client, *_, reconciler = parts
    client.set("t:reconciler:lock", "another-worker")
    assert reconciler.run_once() is None


def test_a_replay_claim_whose_job_never_reached_the_broker_is_released(parts) -> None:  # type: ignore[no-untyped-def]
    _, tracker, _, letters, reconciler = parts
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    stuck, tracked, fresh, done = (make_letter() for _ in range(4))
    for letter in (stuck, tracked, fresh, done):
        letters.write(letter)
    stuck_job, tracked_job, fresh_job, done_job = (str(uuid.uuid4()) for _ in range(4))
    letters.claim_for_replay(stuck.id, stuck_job, long_ago)  # its API worker was killed here
    letters.claim_for_replay(tracked.id, tracked_job, long_ago)
    track(tracker, job(tracked_job))  # tracked: the reconciler sends the job, the claim stays
    letters.claim_for_replay(fresh.id, fresh_job, datetime.now(UTC) + timedelta(seconds=60))
    letters.claim_for_replay(done.id, done_job, long_ago)
    letters.set_replay_result(done.id, ReplayResult.SUCCESS, long_ago)

    report = reconciler.run_once()
    assert report.released == [stuck.id]
    row = letters.get(stuck.id)
    assert (row.replayed, row.replay_job_id, row.replay_result) == (False, None, ReplayResult.SKIPPED)
    assert all(letters.get(x.id).replayed for x in (tracked, fresh, done))
