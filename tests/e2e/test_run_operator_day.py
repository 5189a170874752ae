"""One ``make demo``, stopped, then one ``make run`` on the same Redis, as an operator's day
goes: the demo's jobs stay in the demo's database, a dead-lettered job is FAILURE in Flower,
a breaker trip is one log line, and closing the terminal (SIGHUP) leaves no process."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from tests.e2e.runs import MakeRun, run_env
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import alertmanager_payload, am_alert
from tests.support.private_services import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    var = tmp_path_factory.mktemp("day")
    redis_port = free_port()
    demo = MakeRun(run_env(var, redis_port), var / "demo.log", target="demo")
    try:
        demo.wait_ready()
        # Jobs for demo-down wait on its breaker and retries when the demo stops.
        demo_db = redis.Redis(port=redis_port, db=15)
        wait_until(lambda: demo_db.exists("publishing-demo:breaker:{demo-down}"), 60, 0.5)
        demo.interrupt()
    finally:
        demo.kill()
    with HttpTarget() as hook, HttpTarget([Reply(status=400, body='{"error": "bad"}')]) as refuses:
        targets = var / "targets.yaml"
        targets.write_text(
            "targets:\n"
            f"  - {{name: hook, type: webhook, url: '{hook.url}/in', filter: {{labels: {{route: hook}}}}}}\n"
            f"  - {{name: refuses, type: webhook, url: '{refuses.url}/in', filter: {{labels: {{route: refuses}}}}}}\n"
            f"  - {{name: down, type: webhook, url: 'http://127.0.0.1:{free_port()}/in', filter: {{labels: {{route: down}}}}}}\n"
        )
        env = run_env(
            var,
            redis_port,
            PUBLISHING_TARGETS=str(targets),
            PUBLISHING_BREAKER_FAILURE_THRESHOLD="2",
            PUBLISHING_MAX_RETRIES="3",
            PUBLISHING_RETRY_BASE_S="0.1",
            PUBLISHING_RETRY_JITTER_S="0.1",
        )
        run = MakeRun(env, var / "run.log")
        try:
            yield run.wait_ready()
        finally:
            run.kill()


def _waiting(client: redis.Redis) -> bool:
    return any(client.llen(queue) for queue in ("high", "medium", "low")) or bool(client.hlen("unacked"))


def submit(run: MakeRun, name: str, route: str) -> str:
    payload = alertmanager_payload(am_alert(name, route=route))
    response = requests.post(run.api + "/webhook", json=payload, headers=run.headers(), timeout=10)
    assert response.status_code == 202, response.text
    (job,) = response.json()["jobs"]
    return str(job["id"])


def log_lines(run: MakeRun) -> list[dict]:
    lines = []
    for line in run.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_the_demo_leaves_nothing_for_the_next_run(day: MakeRun) -> None:
    client = redis.Redis.from_url(day.env["REDIS_URL"])
    assert not _waiting(client)
    assert [k for k in client.keys("*") if b"demo" in k] == []
    assert redis.Redis.from_url(day.env["REDIS_URL"], db=15).dbsize() > 0  # the demo's, apart
    job = submit(day, "AfterTheDemo", "hook")
    wait_until(lambda: day.get(f"/api/v2/publishing/jobs/{job}")["state"] == "succeeded", 30, 0.2)
    time.sleep(1)
    assert day.get("/api/v2/publishing/dlq")["total"] == 0
    assert "demo-down" not in day.output()


def test_a_dead_lettered_job_is_a_failure_in_flower(day: MakeRun) -> None:
    job = submit(day, "RefusedForGood", "refuses")
    wait_until(lambda: day.get(f"/api/v2/publishing/jobs/{job}")["state"] == "dlq", 30, 0.2)

    def task() -> dict | None:
        tasks = requests.get(day.flower + "/api/tasks", auth=day.flower_auth(), timeout=5).json()
        found = tasks.get(job)
        return found if found and found.get("state") in ("FAILURE", "SUCCESS") else None

    found = wait_until(task, 30, 0.3)
    assert found["state"] == "FAILURE", found
    assert "HTTP 400" in found["exception"] or "400" in found["exception"], found
    dashboard = requests.get(day.flower + "/api/workers", auth=day.flower_auth(), timeout=10)
    assert dashboard.status_code == 200
    # Not a crash of ours: no traceback, no ERROR line for it.
    lines = [line for line in log_lines(day) if job in json.dumps(line)]
    assert not [line for line in lines if line["level"] == "error" or "exception" in line], lines


def test_a_breaker_trip_is_one_log_line_and_task_chatter_is_gone(day: MakeRun) -> None:
    for n in range(3):
        submit(day, f"TargetDown{n}", "down")

    def trips() -> list[dict]:
        return [
            line for line in log_lines(day) if line["message"].startswith("breaker of target down opened")
        ]

    (trip,) = wait_until(trips, 30, 0.3)
    assert trip["level"] == "warning"
    time.sleep(1)
    assert len(trips()) == 1
    output = day.output()
    assert "] received" not in output and "] succeeded in" not in output


def test_closing_the_terminal_leaves_no_process(day: MakeRun) -> None:
    assert day.started
    day.interrupt(signal.SIGHUP)
    assert day.leftovers() == [], day.output()
    with pytest.raises(requests.ConnectionError):
        requests.get(day.api + "/healthz", timeout=2)
