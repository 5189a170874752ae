"""Flower, as an operator runs it (``celery -A workers.main flower``), shows our jobs with
their final state behind basic auth, and no secret of a target; it refuses to start behind a
placeholder password, and refuses worker control (shutdown, pool restart, revoke) unless
``PUBLISHING_FLOWER_WORKER_CONTROL=1`` asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


@contextmanager
def _flower(env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """Flower on a free loopback port, as ``celery -A workers.main flower``; yields its URL."""
    port = free_port()
    with open(log_path, "ab") as log:
        flower = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "flower", f"--port={port}",
             "--address=127.0.0.1"],
            cwd=ROOT,
            env={**os.environ, **env, "FLOWER_BASIC_AUTH": ":".join(AUTH)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: flower.poll() is not None or _answers(base + "/healthcheck"), 30)
            assert flower.poll() is None, log_path.read_text()
            yield base
        finally:
            flower.terminate()
            flower.wait(10)


def _workers(base: str) -> set[str]:
    response = requests.get(base + "/api/workers?refresh=1", auth=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return set(response.json())


CONTROL_CALLS = [
    "/api/worker/shutdown/{worker}",
    "/api/worker/pool/restart/{worker}",
    "/api/worker/pool/grow/{worker}?n=1",
    "/api/worker/queue/cancel-consumer/{worker}?queue=high",
    "/api/task/revoke/{task}?terminate=true",
    "/api/task/async-apply/publishing.publish",
]


def test_flower_refuses_worker_control_unless_asked_for(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, [])
    try:
        worker = pipeline.worker()
        with _flower(pipeline.env, tmp_path / "flower.log") as base:
            (name,) = wait_until(lambda: _workers(base), 30)
            for call in CONTROL_CALLS:
                url = base + call.format(worker=name, task=uuid.uuid4())
                response = requests.post(url, auth=AUTH, timeout=10)
                assert response.status_code == 403, (call, response.status_code, response.text)
                assert "Read only" in response.text, call
            time.sleep(2)  # a shutdown broadcast, had it gone out, is handled well within this
            assert worker.process is not None and worker.process.poll() is None, "the worker stopped"
            assert _workers(base) == {name}
            assert requests.get(base + "/api/tasks", auth=AUTH, timeout=10).status_code == 200

        # Asked for, the same call shuts the worker down: the refusal above was the read-only mode.
        control = {**pipeline.env, "PUBLISHING_FLOWER_WORKER_CONTROL": "1"}
        with _flower(control, tmp_path / "flower-control.log") as base:
            wait_until(lambda: name in _workers(base), 30)
            response = requests.post(f"{base}/api/worker/shutdown/{name}", auth=AUTH, timeout=10)
            assert response.status_code == 200, response.text
            assert worker.process is not None
            worker.process.wait(30)
    finally:
        pipeline.close()


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        pytest.param("flower:REPLACE-ME", "placeholder password", id="placeholder"),
        pytest.param("flower:changeme", "placeholder password", id="changeme"),
        pytest.param("flower:s3cret-pw", "shorter than 12 characters", id="short"),
        pytest.param("", "not user:password", id="empty"),
        pytest.param(None, "is not set", id="unset"),
    ],
)
def test_flower_refuses_to_start_behind_a_placeholder_or_weak_password(
    fresh_redis: str, credentials: str | None, reason: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    env["REDIS_URL"] = fresh_redis
    if credentials is not None:
        env["FLOWER_BASIC_AUTH"] = credentials
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.main", "flower", f"--port={free_port()}",
         "--address=127.0.0.1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flower: FLOWER_BASIC_AUTH"), result.stderr
    assert reason in lines[0]
    password = (credentials or "").partition(":")[2]
    assert not password or password not in result.stderr


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _task(base: str, job_id: str) -> dict | None:
    tasks = requests.get(base + "/api/tasks", auth=AUTH, timeout=5).json()
    task = tasks.get(job_id)
    return task if task and task.get("state") == "SUCCESS" else None
