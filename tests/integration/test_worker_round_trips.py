"""What a delivered job costs the worker's pool process on Redis (docs/design.md (Job states)):
the round trips of the task's own work are counted inside a real worker (the counting
``bench/instrument`` does: one request written to Redis is one round trip, a pipeline
included) and held to the design's figure; on an I/O pool, jobs at the same step share
them. Counts, not timings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bench.counting import Counting
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

JOBS = 20
STORM = 30
# A delivered firing job: its start mark with the gate and the admission (one pipeline), and its
# settlement with its leave of the gate (one pipeline).
ROUND_TRIPS_PER_DELIVERED_JOB = 2


def _pool_round_trips(counting: Counting, worker_pid: int) -> dict[str, int]:
    counts = counting.read(worker_pid, per=1)["children"]["by_command_per_job"]
    return {label: int(n) for label, n in counts.items()}


def test_a_delivered_job_costs_the_pool_two_round_trips(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    counting = Counting(tmp_path, "worker")
    with HttpTarget() as hook:
        targets = [{"name": "hook", "type": "webhook", "url": hook.url, "resolve_only_if_fired": True}]
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **counting.env())
        try:
            worker = pipeline.worker(concurrency=1)
            assert worker.process is not None
            # The first job loads the scripts and opens the connections: not counted.
            (warm,) = pipeline.submit(alerts(am_alert("Warm", severity="warning")), ["hook"]).jobs
            pipeline.wait_state(warm.id, JobState.SUCCEEDED)
            before = wait_until(lambda: _pool_round_trips(counting, worker.process.pid) or None)  # type: ignore[union-attr]

            firing = [am_alert(f"Counted{n}", severity="warning") for n in range(JOBS)]
            jobs = pipeline.submit(alerts(*firing), ["hook"]).jobs
            for job in jobs:
                pipeline.wait_state(job.id, JobState.SUCCEEDED)
            # Each firing left the gate delivered: its resolve goes out.
            (resolve,) = pipeline.submit(
                alerts(am_alert("Counted0", severity="warning", status="resolved")), ["hook"]
            ).jobs
            pipeline.wait_state(resolve.id, JobState.SUCCEEDED)

            after = _pool_round_trips(counting, worker.process.pid)
            sent = {label: n - before.get(label, 0) for label, n in after.items()}
            sent = {label: n for label, n in sent.items() if n}
            per_job = sum(sent.values()) / (JOBS + 1)
            assert per_job <= ROUND_TRIPS_PER_DELIVERED_JOB, sent
            assert len(hook.received) == JOBS + 2
        finally:
            pipeline.close()


def _task_round_trips(counting: Counting, worker_pid: int) -> int:
    """The round trips of the jobs' two pipelines (start and admission, settlement) in a
    one-process (I/O pool) worker, not the consumer's fetches and events: the pipelines that
    carry the jobs' scripts (kombu's records and acknowledgements may ride with them)."""
    counts = counting.read(worker_pid, per=1)["parent"]["by_command_per_job"]
    return int(sum(n for label, n in counts.items() if label.startswith("PIPELINE") and "EVALSHA" in label))


def _acknowledging_round_trips(counting: Counting, worker_pid: int) -> int:
    """The round trips that carried an acknowledgement (kombu's removal of the unacknowledged
    record), alone or with other writes."""
    counts = counting.read(worker_pid, per=1)["parent"]["by_command_per_job"]
    return int(sum(n for label, n in counts.items() if "ZREM+HDEL" in label))


def _held_storm(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, count: Callable[[Counting, int], int]
) -> int:
    """A storm of ``STORM`` jobs to a gevent worker of as many slots, whose requests the target
    holds and then answers together, so its jobs reach their settlements together; what
    ``count`` counts in the worker meanwhile, once every job is delivered and acknowledged."""
    counting = Counting(tmp_path, "worker")
    answer = threading.Event()
    with HttpTarget([Reply(hold=answer)]) as hook:
        targets = [{"name": "hook", "type": "webhook", "url": hook.url}]
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **counting.env())
        try:
            worker = pipeline.worker(concurrency=STORM, pool="gevent")
            assert worker.process is not None
            pid = worker.process.pid
            answer.set()
            (warm,) = pipeline.submit(alerts(am_alert("Warm", severity="warning")), ["hook"]).jobs
            pipeline.wait_state(warm.id, JobState.SUCCEEDED)
            before = wait_until(lambda: count(counting, pid) or None)
            answer.clear()

            storm = [am_alert(f"Storm{n}", severity="warning") for n in range(STORM)]
            jobs = pipeline.submit(alerts(*storm), ["hook"]).jobs
            wait_until(lambda: len(hook.received) == STORM + 1)
            answer.set()
            for job in jobs:
                pipeline.wait_state(job.id, JobState.SUCCEEDED)
            # Every job is acknowledged for good: nothing is left for Redis to hand out again.
            broker = redis.Redis.from_url(fresh_redis)
            wait_until(lambda: broker.hlen("unacked") == 0 and broker.zcard("unacked_index") == 0)
            assert len(hook.received) == STORM + 1
            return count(counting, pid) - before
        finally:
            pipeline.close()


def test_jobs_of_an_io_pool_at_the_same_step_share_round_trips(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    sent = _held_storm(fresh_redis, dlq_database_url, tmp_path, _task_round_trips)
    # Alone, each job would send its two; sharing, the storm sends fewer.
    assert sent < ROUND_TRIPS_PER_DELIVERED_JOB * STORM, sent


def test_an_io_pool_acknowledges_jobs_that_end_together_in_shared_round_trips(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    acks = _held_storm(fresh_redis, dlq_database_url, tmp_path, _acknowledging_round_trips)
    # Alone, each acknowledgement is a round trip of its own.
    assert 0 < acks < STORM, acks
