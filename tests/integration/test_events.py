"""Operational events with real workers: a job that fails for good tells the events webhook
(signed, on the high queue), and an events target that fails itself produces no event about
itself, so a broken events target cannot feed on its own failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from publishing.events import EVENT_ALERT_NAME
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Received, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

WHSEC = "whsec_" + base64.b64encode(b"a 24-byte events key!!!!").decode()


def with_events(pipeline: Pipeline, targets: list[dict[str, Any]], events: dict[str, Any]) -> None:
    pipeline.targets_file.write_text(yaml.safe_dump({"targets": targets, "events": events}))


def signature(received: Received) -> str:
    headers = {k.lower(): v for k, v in received.headers.items()}
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_a_dead_lettered_job_is_pushed_to_the_events_webhook(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(400)]) as app_target, HttpTarget() as ops:
        targets = [
            {"name": "app", "type": "webhook", "url": app_target.url},
            {"name": "ops", "type": "webhook", "url": ops.url, "signing_secret": WHSEC},
        ]
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
        with_events(pipeline, targets, {"targets": ["ops"], "on": ["dead_lettered"]})
        try:
            pipeline.worker(queues="high,medium,low")
            (job,) = pipeline.submit(alerts(am_alert("Rejected", severity="warning")), ["app"]).jobs
            pipeline.wait_state(job.id, JobState.DLQ)

            (event,) = ops.wait_for(1)
            body = event.json()
            assert body["alert_name"] == EVENT_ALERT_NAME
            assert body["labels"]["event"] == "dead_lettered"
            assert body["labels"]["target"] == "app"
            assert body["labels"]["job_id"] == job.id
            assert body["labels"]["severity"] == "critical"  # the high queue
            assert "HTTP 400" in body["annotations"]["reason"]
            assert {k.lower(): v for k, v in event.headers.items()}["webhook-signature"] == signature(event)
        finally:
            pipeline.close()


def test_an_events_target_that_fails_sends_no_event_about_itself(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget([Reply(400)]) as app_target, HttpTarget([Reply(400)]) as ops:
        targets = [
            {"name": "app", "type": "webhook", "url": app_target.url},
            {"name": "ops", "type": "webhook", "url": ops.url},
        ]
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
        with_events(pipeline, targets, {"targets": ["ops"], "on": ["dead_lettered", "breaker_opened"]})
        try:
            pipeline.worker()
            (job,) = pipeline.submit(alerts(am_alert("Rejected", severity="warning")), ["app"]).jobs
            pipeline.wait_state(job.id, JobState.DLQ)
            ops.wait_for(1)
            # The event job itself is dead-lettered at ops; that is logged, not sent to ops.
            wait_until(lambda: len(pipeline.dlq_rows(target="ops")) == 1)
            time.sleep(1.5)
            assert len(ops.received) == 1
            assert {row.target_name for row in pipeline.dlq_rows()} == {"app", "ops"}
            log = (tmp_path / "worker-w1.log").read_text()
            assert "event dead_lettered about events target ops not sent" in log
        finally:
            pipeline.close()


def test_dlq_over_is_sent_once_a_crossing(fresh_redis: str, dlq_database_url: str, tmp_path: Path) -> None:
    with HttpTarget([Reply(400)]) as app_target, HttpTarget() as ops:
        targets = [
            {"name": "app", "type": "webhook", "url": app_target.url},
            {"name": "ops", "type": "webhook", "url": ops.url},
        ]
        pipeline = Pipeline(
            tmp_path, fresh_redis, dlq_database_url, targets, PUBLISHING_HISTORY_FLUSH_INTERVAL_S="0.1"
        )
        with_events(pipeline, targets, {"targets": ["ops"], "on": ["dlq_over"], "dlq_over": 1})
        try:
            pipeline.worker()
            for name in ("First", "Second", "Third"):
                (job,) = pipeline.submit(alerts(am_alert(name, severity="warning")), ["app"]).jobs
                pipeline.wait_state(job.id, JobState.DLQ)
            (event,) = ops.wait_for(1)
            assert event.json()["labels"]["event"] == "dlq_over"
            time.sleep(2.5)  # more than a check interval: still over, so nothing more
            assert len(ops.received) == 1
        finally:
            pipeline.close()
