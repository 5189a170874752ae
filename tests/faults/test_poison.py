"""Poison jobs (docs/design.md (Errors, Retries), the poison guard): a job whose payload cannot be built goes to the DLQ once,
not around forever, and the jobs beside it are delivered; a job that kills its worker process
every time it runs is dead-lettered after ``Timings.max_starts`` starts.

A payload that really breaks a formatter, found by reading ``publishing/formatters``: the
PagerDuty formatter splits ``generatorURL`` with ``urlsplit``, which raises on an unclosed
IPv6 bracket (``http://[oops``). Two inputs that used to poison the worker are now refused
whole at the API, naming the field: a lone surrogate (``"\\ud800"`` is valid JSON but no UTF-8
store takes it) and a start time that is Go's zero time spelled with a fraction. A message
on the broker that is no job at all is dead-lettered as it came.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from publishing.plan import Timings
from publishing.routing import PUBLISH_TASK
from tests.faults.rig import Rig, am_alert, am_payload, payloads
from tests.support.fault_target import FaultTarget, Hit
from tests.support.fleet import wait_until
from tests.support.http_target import Reply
from tests.support.procs import socket_owner
from workers.celery_app import create_celery_app

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _bad_generator_url() -> dict[str, Any]:
    alert = am_alert("PoisonUrl", instance="poison")
    alert["generatorURL"] = "http://[oops"
    return alert


def _lone_surrogate() -> dict[str, Any]:
    alert = am_alert("PoisonText", instance="poison")
    alert["annotations"] = {"summary": "broken \ud800 text"}
    return alert


def _go_zero_start() -> dict[str, Any]:
    """Go's zero time spelled with a fraction: the API takes it as a real start, but the
    message form writes it back as ``0001-01-01T00:00:00Z``, which means "no time"."""
    alert = am_alert("PoisonStart", instance="poison")
    alert["startsAt"] = "0001-01-01T00:00:00.000Z"
    return alert


@pytest.mark.parametrize(
    ("poison", "target_type"),
    [(_bad_generator_url, "pagerduty")],
    ids=["pagerduty-bad-generator-url"],
)
def test_a_payload_no_formatter_can_build_is_dead_lettered_once_and_stalls_nothing(
    poison, target_type: str, fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("poisoned", Reply(200))
    config: dict[str, Any] = {"name": "poisoned", "type": target_type, "url": f"{target.url}/v2/enqueue"}
    if target_type == "pagerduty":
        config |= {"routing_key": "R0UT1NG-poison", "rate_limit": False}
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target], [config])
    try:
        rig.fleet.start("w1", concurrency=2)
        sender = rig.start_api()
        for payload in payloads("Healthy", 20)[:2]:
            sender.send(payload)
        (poison_job,) = sender.send(am_payload([poison()]))
        for payload in payloads("After", 20):
            sender.send(payload)

        books = rig.books(timeout_s=30)
        record_books(f"7 poison {poison.__name__.strip('_')}", books)
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.submitted == 31
        assert books.delivered == 30
        assert books.in_dlq == 1 and books.dlq_rows_extra == 0
        assert poison_job["id"] not in {h.job_id for h in target.snapshot()}
        starts = {
            k.decode(): int(v) for k, v in rig.redis.hgetall(f"publishing:starts:{poison_job['id']}").items()
        }
        assert starts == {"0.0.0": 1}, f"the poison job ran more than once: {starts}"
        assert rig.redis.hget(f"publishing:job:{poison_job['id']}", "state") == b"dlq"
    finally:
        rig.close()
        target.stop()


class KillTheDeliverer:
    """Kills (SIGKILL) the worker child that delivers a ``PoisonKiller`` alert: a job that
    takes its worker process down every time it runs, as a segfaulting library would."""

    def __init__(self, rig: Rig, target: FaultTarget) -> None:
        self.rig = rig
        self.target = target
        self.killed: list[int] = []

    def __call__(self, hit: Hit) -> Reply:
        if b"PoisonKiller" in hit.body:
            owner = socket_owner(hit.client_port, self.target.port, self.rig.fleet.all_children())
            if owner is not None:
                self.killed.append(owner)
                os.kill(owner, signal.SIGKILL)
                # Nobody reads this reply: the process that sent the request is gone.
                return Reply(599)
        return Reply(200, delay_s=0.05)


def test_a_job_that_kills_its_worker_every_time_is_dead_lettered_after_the_redelivery_cap(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("hook")
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target])
    killer = KillTheDeliverer(rig, target)
    target.respond_with(killer)
    try:
        rig.fleet.start("w1", concurrency=2)
        sender = rig.start_api()
        (poison_job,) = sender.send(am_payload([am_alert("PoisonKiller", instance="k")]))
        for payload in payloads("Beside", 40):
            sender.send(payload)

        books = rig.books(timeout_s=90)
        record_books("7 poison kills its worker", books)
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.submitted == 41
        assert books.delivered == 40
        assert books.in_dlq == 1
        assert len(killer.killed) == Timings().max_starts
        assert len([h for h in target.snapshot() if h.job_id == poison_job["id"]]) == Timings().max_starts
        rows = rig.dlq_rows()
        assert len(rows) == 1 and "redelivered" in rows[0]["error_message"]
    finally:
        rig.close()
        target.stop()


@pytest.mark.parametrize(
    ("poison", "field"),
    [(_lone_surrogate, "alerts[0].annotations.summary"), (_go_zero_start, "alerts[0].startsAt")],
    ids=["lone-surrogate", "go-zero-start"],
)
def test_input_no_store_could_hold_is_refused_whole_at_the_api(
    poison, field: str, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    target = FaultTarget("poisoned", Reply(200))
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target])
    try:
        assert rig.start_api()
        assert rig.api is not None
        response = requests.post(
            f"{rig.api.url}/webhook", json=am_payload([poison(), am_alert("Fine")]), timeout=10
        )
        assert response.status_code == 422, response.text
        assert field in response.text
        assert rig.redis.keys("publishing:job:*") == []
    finally:
        rig.close()
        target.stop()


def test_a_broker_message_that_is_no_job_is_dead_lettered_not_dropped(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    target = FaultTarget("poisoned", Reply(200))
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target])
    app = create_celery_app(rig.settings)
    try:
        rig.fleet.start("w1", concurrency=1)
        broken = {
            "job_id": "x",
            "target": "poisoned",
            "priority": "high",
            "alert": {"alert": {"status": "?"}},
        }
        task_id = str(uuid.uuid4())
        app.send_task(PUBLISH_TASK, kwargs={"message": broken}, task_id=task_id, queue="high")
        wait_until(lambda: any(str(row["job_id"]) == task_id for row in rig.dlq_rows()), 30)
        (row,) = [row for row in rig.dlq_rows() if str(row["job_id"]) == task_id]
        assert "could not be read" in row["error_message"]
        assert row["error_type"] == "permanent"
    finally:
        app.close()
        rig.close()
        target.stop()
