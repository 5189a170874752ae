"""Flower, as an operator runs it (``celery -A workers.main flower``), shows our jobs with
their final state behind basic auth, and no secret of a target."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from publishing.tracking import JobState
from tests.support.fleet import ROOT, wait_until
from tests.support.http_target import HttpTarget
from tests.support.pipeline import Pipeline, alerts, am_alert
from tests.support.private_services import free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

AUTH = ("operator", "flower-test-password")
ROUTING_KEY = "FLOWER-LEAK-CHECK-ROUTING-KEY"


def test_flower_lists_a_job_with_its_final_state_and_no_secret(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    with HttpTarget() as pd:
        targets = [
            {"name": "pd", "type": "pagerduty", "url": pd.url + "/v2/enqueue", "routing_key": ROUTING_KEY}
        ]
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
        port = free_port()
        flower = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "flower", f"--port={port}",
             "--address=127.0.0.1", "--max_tasks=1000"],
            cwd=ROOT,
            env={**os.environ, **pipeline.env, "FLOWER_BASIC_AUTH": ":".join(AUTH)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _answers(base + "/healthcheck"), 30)
            pipeline.worker()
            (job,) = pipeline.submit(alerts(am_alert("SeenInFlower")), ["pd"]).jobs
            pipeline.wait_state(job.id, JobState.SUCCEEDED)

            assert requests.get(base + "/api/tasks", timeout=5).status_code == 401
            task = wait_until(lambda: _task(base, job.id), 20)
            assert task["name"] == "publishing.publish"
            assert task["state"] == "SUCCESS"
            listing = requests.get(base + "/api/tasks", auth=AUTH, timeout=5).text
            assert job.id in listing
            assert ROUTING_KEY not in listing
            assert (
                ROUTING_KEY not in requests.get(f"{base}/api/task/info/{job.id}", auth=AUTH, timeout=5).text
            )
        finally:
            flower.terminate()
            flower.wait(10)
            pipeline.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _task(base: str, job_id: str) -> dict | None:
    tasks = requests.get(base + "/api/tasks", auth=AUTH, timeout=5).json()
    task = tasks.get(job_id)
    return task if task and task.get("state") == "SUCCESS" else None
