"""Firing before resolved: a resolve never reaches a target before a pending firing of the
same alert; the pending firing is superseded (``publishing.ordering``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from publishing.tracking import JobState
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_a_firing_held_by_503s_is_superseded_by_its_resolve(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(503), Reply(503), Reply(200)]) as hook:
        targets = [{"name": "hook", "type": "webhook", "url": hook.url}]
        pipeline = Pipeline(
            tmp_path,
            fresh_redis,
            dlq_database_url,
            targets,
            PUBLISHING_RETRY_BASE_S="0.5",
            PUBLISHING_MAX_RETRIES="8",
        )
        try:
            pipeline.worker(concurrency=2)
            (firing,) = pipeline.submit(alerts(am_alert("Flapping", severity="warning")), ["hook"]).jobs
            hook.wait_for(1)
            (resolved,) = pipeline.submit(
                alerts(am_alert("Flapping", severity="warning", status="resolved")), ["hook"]
            ).jobs
            assert resolved.fingerprint == firing.fingerprint

            pipeline.wait_state(resolved.id, JobState.SUCCEEDED)
            pipeline.wait_state(firing.id, JobState.SUPERSEDED, timeout_s=20)
            statuses = [r.json()["status"] for r in hook.received]
            last_resolved = max(i for i, s in enumerate(statuses) if s == "resolved")
            assert "firing" not in statuses[last_resolved:]
            assert pipeline.dlq_rows() == []
        finally:
            pipeline.close()
