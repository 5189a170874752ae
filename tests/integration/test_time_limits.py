"""The publish task's time limits come from the longest timeout in use, a target's own
``timeout_s`` included (docs/design.md (Retries)): an attempt within its target's timeout is
never cut by the task's soft limit, counted as a failure and sent again."""

from __future__ import annotations

from pathlib import Path

import pytest

from publishing.tracking import JobState
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_a_slow_target_within_its_own_timeout_is_delivered_once(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    slow = HttpTarget([Reply(200, delay_s=6.0)])
    targets = [{"name": "slow", "type": "webhook", "url": slow.url, "timeout_s": 8}]
    # Limits taken from this default alone would stop the run after about 5.4 s.
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, PUBLISHING_HTTP_TIMEOUT_S="0.2")
    try:
        pipeline.worker(concurrency=1)
        (job,) = pipeline.submit(alerts(am_alert("Slow")), ["slow"]).jobs

        done = pipeline.wait_state(job.id, JobState.SUCCEEDED, JobState.FAILED, JobState.DLQ, timeout_s=40)

        assert done.state is JobState.SUCCEEDED
        assert len(slow.wait_for(1)) == 1
        log = (tmp_path / "worker-w1.log").read_text()
        assert "SoftTimeLimitExceeded" not in log and "TimeLimitExceeded" not in log
        assert pipeline.dlq_rows() == []
    finally:
        pipeline.close()
        slow.stop()
    assert len(slow.wait_for(1)) == 1  # never a second delivery
