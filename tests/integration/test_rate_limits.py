"""Fleet-wide rate limits and pauses: a token bucket in Redis checked in the same Lua call as
the breaker, and a 429 with Retry-After that pauses the whole target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from publishing.tracking import JobState
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def hook() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


def test_a_limited_target_never_sees_more_than_its_rate_across_the_fleet(
    hook: HttpTarget, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    targets = [{"name": "limited", "type": "webhook", "url": hook.url, "rate_limit": {"per_s": 5}}]
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, PUBLISHING_RETRY_JITTER_S="0.3")
    try:
        pipeline.worker("w1", concurrency=4)
        pipeline.worker("w2", concurrency=4)
        raw = [am_alert(f"Burst{i}", instance=f"h{i}") for i in range(60)]
        jobs = pipeline.submit(alerts(*raw), ["limited"]).jobs
        for job in jobs:
            pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=60)

        arrivals = sorted(r.at for r in hook.received)
        assert len(arrivals) == 60
        busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
        assert busiest <= 5 + 1
        assert pipeline.dlq_rows() == []
        assert all(pipeline.job(j.id).retry_count == 0 for j in jobs)
    finally:
        pipeline.close()


def test_a_429_with_retry_after_pauses_the_target_for_every_worker(
    hook: HttpTarget, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    hook.script([Reply(429, headers={"Retry-After": "3"}), Reply(200)])
    targets = [{"name": "busy", "type": "webhook", "url": hook.url}]
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
    try:
        pipeline.worker("w1", concurrency=2)
        pipeline.worker("w2", concurrency=2)
        (first,) = pipeline.submit(alerts(am_alert("First")), ["busy"]).jobs
        hook.wait_for(1)
        others = pipeline.submit(
            alerts(*[am_alert(f"Next{i}", instance=f"h{i}") for i in range(6)]), ["busy"]
        ).jobs
        for job in [first, *others]:
            pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=20)

        rejected_at = hook.received[0].at
        later = [r.at - rejected_at for r in hook.received[1:]]
        assert len(later) == 7
        assert min(later) >= 3.0
        assert pipeline.job(first.id).retry_count == 0  # a pause is not a failure
        assert pipeline.dlq_rows() == []
    finally:
        pipeline.close()
