"""The Celery pipeline end to end: real Redis, real PostgreSQL, real worker processes and
real HTTP servers on loopback standing in for the targets (docs/design.md (Where an alert goes); docs/design.md (Errors, Retries); docs/design.md (Circuit breaker); docs/design.md (Dead-letter queue); docs/design.md (Job states))."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from publishing.adapters.redis.health import RedisTargetHealth
from publishing.breaker import BreakerState
from publishing.classification import ErrorType
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

ROUTING_KEY = "R0UT1NGKEY-test-0001"


@pytest.fixture
def targets() -> Iterator[dict[str, HttpTarget]]:
    servers = {name: HttpTarget() for name in ("pagerduty", "slack", "webhook")}
    yield servers
    for server in servers.values():
        server.stop()


def target_config(servers: dict[str, HttpTarget]) -> list[dict[str, object]]:
    return [
        {
            "name": "pagerduty-prod",
            "type": "pagerduty",
            "url": servers["pagerduty"].url + "/v2/enqueue",
            "routing_key": ROUTING_KEY,
        },
        {"name": "slack-ops", "type": "slack", "url": servers["slack"].url + "/services/T0/B0/XYZ"},
        {"name": "ops-webhook", "type": "webhook", "url": servers["webhook"].url + "/alerts"},
    ]


@pytest.fixture
def make_pipeline(fresh_redis: str, dlq_database_url: str, tmp_path: Path) -> Iterator[object]:
    pipelines: list[Pipeline] = []

    def make(targets: list[dict[str, object]], **env: str) -> Pipeline:
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **env)
        pipelines.append(pipeline)
        return pipeline

    yield make
    for pipeline in pipelines:
        pipeline.close()


def test_a_critical_alert_reaches_every_target_once_with_its_payload(make_pipeline, targets) -> None:
    pipeline = make_pipeline(target_config(targets))
    pipeline.worker()
    result = pipeline.submit(alerts(am_alert("DiskFull", instance="db-1")))

    assert {j.target for j in result.jobs} == {"pagerduty-prod", "slack-ops", "ops-webhook"}
    assert all(j.priority.value == "high" for j in result.jobs)
    for job in result.jobs:
        pipeline.wait_state(job.id, JobState.SUCCEEDED)

    by_target = {j.target: j.id for j in result.jobs}
    (pd,) = targets["pagerduty"].received
    assert pd.path == "/v2/enqueue"
    body = pd.json()
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == result.jobs[0].fingerprint
    assert body["payload"]["severity"] == "critical"
    assert pd.headers["Idempotency-Key"] == by_target["pagerduty-prod"]

    (slack,) = targets["slack"].received
    assert "DiskFull" in slack.json()["text"]
    assert slack.json()["blocks"]

    (hook,) = targets["webhook"].received
    assert hook.json()["alert_name"] == "DiskFull"
    assert hook.headers["webhook-id"] == by_target["ops-webhook"]
    assert pipeline.dlq_rows() == []


def test_two_503s_then_200_take_three_attempts_spaced_by_the_policy(make_pipeline, targets) -> None:
    hook = targets["webhook"]
    hook.script([Reply(503), Reply(503), Reply(200)])
    pipeline = make_pipeline(target_config(targets), PUBLISHING_RETRY_BASE_S="0.4")
    pipeline.worker()
    (job,) = pipeline.submit(alerts(am_alert("Flaky", severity="warning")), ["ops-webhook"]).jobs

    snapshot = pipeline.wait_state(job.id, JobState.SUCCEEDED)
    arrivals = [r.at for r in hook.wait_for(3)]
    assert len(hook.received) == 3
    assert snapshot.retry_count == 2
    # Retry n waits base * 2**n (+ jitter): at least 0.4 s, then at least 0.8 s.
    assert arrivals[1] - arrivals[0] >= 0.4
    assert arrivals[2] - arrivals[1] >= 0.8
    assert {r.headers["Idempotency-Key"] for r in hook.received} == {job.id}


def test_a_permanent_error_dead_letters_after_one_attempt(make_pipeline, targets) -> None:
    targets["webhook"].script([Reply(400, body='{"error":"bad"}')])
    pipeline = make_pipeline(target_config(targets))
    pipeline.worker()
    (job,) = pipeline.submit(alerts(am_alert("Bad")), ["ops-webhook"]).jobs

    snapshot = pipeline.wait_state(job.id, JobState.DLQ)
    (row,) = pipeline.dlq_rows(target="ops-webhook")
    assert len(targets["webhook"].received) == 1
    assert row.job_id == job.id
    assert row.error_type is ErrorType.PERMANENT
    assert row.retry_count == 0
    assert row.priority.value == "high"
    assert snapshot.error_type == "permanent"


def test_a_target_that_stays_down_dead_letters_after_every_retry(make_pipeline, targets) -> None:
    targets["webhook"].script([Reply(503)])
    pipeline = make_pipeline(
        target_config(targets), PUBLISHING_MAX_RETRIES="3", PUBLISHING_BREAKER_FAILURE_THRESHOLD="50"
    )
    pipeline.worker()
    (job,) = pipeline.submit(alerts(am_alert("Down")), ["ops-webhook"]).jobs

    pipeline.wait_state(job.id, JobState.DLQ, timeout_s=30)
    (row,) = pipeline.dlq_rows()
    assert len(targets["webhook"].received) == 4  # max_retries + 1
    assert row.error_type is ErrorType.TRANSIENT
    assert row.retry_count == 3
    assert "503" in row.error_message
    health = RedisTargetHealth(pipeline.redis, pipeline.settings.key_prefix).get("ops-webhook")
    assert (health.counts["failure"], health.success_rate) == (4, 0.0)
    assert health.last_error is not None and "503" in health.last_error


def test_the_breaker_is_shared_by_the_fleet_and_probes_one_at_a_time(make_pipeline, targets) -> None:
    hook = targets["webhook"]
    hook.script([Reply(503)])
    pipeline = make_pipeline(
        target_config(targets),
        PUBLISHING_MAX_RETRIES="30",
        PUBLISHING_RETRY_BASE_S="0.05",
        PUBLISHING_RETRY_MAX_BACKOFF_S="0.2",
        PUBLISHING_BREAKER_OPEN_TIMEOUT_S="3",
    )
    pipeline.worker("w1", concurrency=2)
    pipeline.worker("w2", concurrency=2)
    raw = [am_alert(f"Outage{i}", instance=f"host-{i}") for i in range(8)]
    jobs = pipeline.submit(alerts(*raw), ["ops-webhook"]).jobs

    wait_until(lambda: pipeline.breakers.status("ops-webhook").state is BreakerState.OPEN, 15)
    seen_at_open = len(hook.received)
    assert seen_at_open >= 5
    wait_until(lambda: any(pipeline.job(j.id).state is JobState.DEFERRED for j in jobs), 5)
    # While open, nothing reaches the target from any worker (in-flight attempts aside).
    hook.script([Reply(200, delay_s=0.4)])
    time.sleep(1.5)
    assert len(hook.received) <= seen_at_open + 4
    before_probe = len(hook.received)

    for job in jobs:
        pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=30)
    status = pipeline.breakers.status("ops-webhook")
    assert status.state is BreakerState.CLOSED
    assert status.recoveries == 1
    probes = hook.received[before_probe : before_probe + 2]
    # Exactly one probe at a time: the second starts after the first (0.4 s) has answered.
    assert probes[1].at - probes[0].at >= 0.4
    assert pipeline.dlq_rows() == []


def test_a_high_job_starts_before_a_backlog_of_low_jobs(make_pipeline, targets) -> None:
    slow, fast = targets["slack"], targets["webhook"]
    slow.script([Reply(200, delay_s=0.5)])
    config = target_config(targets)
    pipeline = make_pipeline(config)
    low = [am_alert(f"Info{i}", severity="info", instance=f"h{i}") for i in range(500)]
    low_jobs = pipeline.submit(alerts(*low), ["slack-ops"]).jobs
    assert all(j.priority.value == "low" for j in low_jobs)
    (high,) = pipeline.submit(alerts(am_alert("Critical")), ["ops-webhook"]).jobs

    pipeline.worker(concurrency=2)
    pipeline.wait_state(high.id, JobState.SUCCEEDED, timeout_s=20)
    # At most the slots' worth of low jobs ran before it (one fetch each, fixed order).
    assert len(slow.received) <= 4
    assert len(fast.received) == 1
