"""A message the consumer cannot hand to its prefork pool (pickling it overflows the stack)
is dead-lettered as it came, acknowledged, and the worker lives on to deliver the next job.

Before the guard, ``enrichment_metadata`` nested 800 deep made ``celery.worker`` log
``Unrecoverable error: RecursionError(... while pickling an object)`` and exit; with
``acks_late`` the message came back and killed the next worker. The API now refuses such a
body, so the message is put on the broker directly, as a broken or older producer could.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from publishing.routing import PUBLISH_TASK
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _deep(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["m"] = {}
        node = node["m"]
    return root


# On prefork the consumer cannot pickle the message for its child; a gevent pool runs the task
# in the consumer's own process, where the deep alert is refused as unreadable instead.
@pytest.mark.parametrize(
    ("pool", "concurrency", "reason"),
    [
        ("prefork", 1, "could not be handed to a worker process"),
        ("gevent", 20, "the job message could not be read"),
    ],
)
def test_a_message_the_pool_cannot_take_is_dead_lettered_and_the_worker_lives(
    pool: str, concurrency: int, reason: str, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    target = HttpTarget()
    pipeline = Pipeline(
        tmp_path, fresh_redis, dlq_database_url, [{"name": "ok", "type": "webhook", "url": target.url}]
    )
    try:
        worker = pipeline.worker(concurrency=concurrency, pool=pool)
        poison_id = str(uuid.uuid4())
        message = {
            "job_id": poison_id,
            "target": "ok",
            "priority": "high",
            "alert": {**alerts(am_alert("Deep"))[0].to_dict(), "enrichment_metadata": _deep(800)},
            "submitted_at": 0.0,
        }
        pipeline.app.send_task(
            PUBLISH_TASK, kwargs={"message": message}, task_id=poison_id, queue="high", routing_key="high"
        )
        behind = pipeline.submit(alerts(am_alert("Behind")), ["ok"]).jobs[0]

        pipeline.wait_state(behind.id, JobState.SUCCEEDED, timeout_s=30)
        (row,) = wait_until(lambda: pipeline.dlq_rows(target="ok"), 10)

        assert worker.process is not None and worker.process.poll() is None
        assert row.job_id == poison_id
        assert '"Deep"' in row.enriched_alert["text"] and row.enriched_alert["text"].count('{"m":') == 800
        assert reason in row.error_message
        assert len(target.wait_for(1)) == 1
        log = (tmp_path / "worker-w1.log").read_text()
        assert "Unrecoverable error" not in log
        assert pipeline.redis.llen("high") == 0
        worker.stop()
        assert worker.process.returncode == 0, log[-2000:]
    finally:
        pipeline.close()
        target.stop()
