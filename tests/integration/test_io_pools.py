"""A worker on an I/O pool (``-P gevent``, ``-P threads``) delivers, retries, defers,
dead-letters and cuts a hanging target exactly as a prefork one does (docs/operations.md
(Worker pools)): the same jobs, the same outcomes, the same DLQ rows."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from publishing.adapters import metrics
from publishing.breaker import BreakerState
from publishing.classification import ErrorType
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert
from tests.support.private_services import free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

POOLS = [("prefork", 2), ("gevent", 20), ("threads", 20)]


@pytest.fixture
def servers() -> Iterator[dict[str, HttpTarget]]:
    found = {
        "ok": HttpTarget(),
        "flaky": HttpTarget([Reply(503), Reply(200)]),
        "bad": HttpTarget([Reply(400, body='{"error":"bad request"}')]),
        "down": HttpTarget([Reply(503)]),
        "hang": HttpTarget([Reply(200, delay_s=30.0), Reply(200)]),
    }
    yield found
    for server in found.values():
        server.stop()


def _targets(servers: dict[str, HttpTarget]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = [
        {"name": name, "type": "webhook", "url": server.url + "/alerts"} for name, server in servers.items()
    ]
    for target in targets:
        if target["name"] == "hang":
            target["timeout_s"] = 1
    return targets


class TaskEvents:
    """The task events the fleet sends (what Flower shows), as a receiver on the broker sees them."""

    def __init__(self, app: Celery) -> None:
        self.seen: list[dict[str, Any]] = []
        self._connection = app.connection_for_read()
        self._receiver = app.events.Receiver(self._connection, handlers={"*": self.seen.append})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def of(self, task_id: str) -> set[str]:
        return {e["type"] for e in list(self.seen) if e.get("uuid") == task_id}

    def close(self) -> None:
        self._receiver.should_stop = True
        self._thread.join(5)
        self._connection.release()


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    full = f"{metrics.NS}_{name}"
    return sum(v for (n, ls), v in found.items() if n == full and set(labels.items()) <= set(ls))


@pytest.mark.parametrize(("pool", "concurrency"), POOLS)
def test_an_io_pool_worker_delivers_retries_defers_and_dead_letters_like_prefork(
    pool: str,
    concurrency: int,
    servers: dict[str, HttpTarget],
    fresh_redis: str,
    dlq_database_url: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    (tmp_path / "prom").mkdir()
    pipeline = Pipeline(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        _targets(servers),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        PUBLISHING_WORKER_METRICS_PORT=str(port),
        PUBLISHING_BREAKER_FAILURE_THRESHOLD="2",
        PUBLISHING_BREAKER_OPEN_TIMEOUT_S="30",
        PUBLISHING_HTTP_TIMEOUT_S="3",
    )
    events = TaskEvents(pipeline.app)
    try:
        time.sleep(0.5)  # the receiver subscribed
        worker = pipeline.worker(pool=pool, concurrency=concurrency)
        submit = pipeline.submit
        (hang,) = submit(alerts(am_alert("Hang")), ["hang"]).jobs
        (ok,) = submit(alerts(am_alert("Ok")), ["ok"]).jobs
        (flaky,) = submit(alerts(am_alert("Flaky")), ["flaky"]).jobs
        (bad,) = submit(alerts(am_alert("Bad")), ["bad"]).jobs
        down = submit(alerts(*(am_alert("Down", instance=f"h{i}") for i in range(4))), ["down"]).jobs

        # Delivered once, with its idempotency key.
        pipeline.wait_state(ok.id, JobState.SUCCEEDED)
        (request,) = servers["ok"].received
        assert request.headers["Idempotency-Key"] == ok.id
        # A transient 503 is retried, then delivered.
        assert pipeline.wait_state(flaky.id, JobState.SUCCEEDED).retry_count == 1
        assert len(servers["flaky"].received) == 2
        # A permanent 400 is dead-lettered after one attempt, its row in PostgreSQL.
        assert pipeline.wait_state(bad.id, JobState.DLQ).error_type == "permanent"
        (row,) = pipeline.dlq_rows(target="bad")
        assert (row.job_id, row.error_type, row.retry_count) == (bad.id, ErrorType.PERMANENT, 0)
        assert "400" in row.error_message
        # Two failures open the target's breaker; the jobs behind it are deferred, not sent.
        wait_until(lambda: pipeline.breakers.status("down").state is BreakerState.OPEN)
        wait_until(lambda: any(pipeline.job(j.id).state is JobState.DEFERRED for j in down))
        sent_while_open = len(servers["down"].received)
        assert sent_while_open <= 2 + concurrency
        # A target that never answers is cut at its own 1 s timeout and retried, not left to
        # hold the slot until a time limit.
        snapshot = pipeline.wait_state(hang.id, JobState.SUCCEEDED, timeout_s=20)
        assert snapshot.retry_count == 1
        assert len(servers["hang"].received) == 2

        assert pipeline.dlq_rows(target="ok") == pipeline.dlq_rows(target="flaky") == []
        assert len(servers["down"].received) == sent_while_open
        # Its /metrics counts what it did, and every job slot, idle again.
        found = wait_until(lambda: _scrape(port), 10)
        assert _value(found, "jobs_processed_total", target="ok", state="succeeded") == 1
        assert _value(found, "jobs_processed_total", target="flaky", state="succeeded") == 1
        assert _value(found, "dlq_writes_total", target="bad", error_type="permanent") == 1
        assert _value(found, "deferrals_total", target="down") >= 1
        assert _value(found, "workers_idle") == concurrency
        assert _value(found, "workers_active") == 0
        # Flower sees every job's course through the task events.
        wait_until(lambda: {"task-received", "task-started", "task-succeeded"} <= events.of(ok.id))
        wait_until(lambda: {"task-started", "task-retried"} <= events.of(flaky.id))
        wait_until(lambda: "task-failed" in events.of(bad.id))
        log = (tmp_path / "worker-w1.log").read_text()
        assert "TimeLimitExceeded" not in log and "Traceback" not in log, log[-3000:]
        worker.stop()
        assert worker.process is not None and worker.process.returncode == 0, log[-3000:]
    finally:
        events.close()
        pipeline.close()


class TricklingSmtp:
    """An SMTP server whose greeting never ends: a byte every 50 ms, so no single read of the
    client ever times out. Only the task's soft time limit can end such an attempt."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        self._clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while not self._stopped.is_set():
                client, _ = self._server.accept()
                self._clients.append(client)
                threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._stopped.is_set():
                for byte in b"220-still greeting\r\n":
                    client.sendall(bytes([byte]))
                    time.sleep(0.05)

    def stop(self) -> None:
        self._stopped.set()
        for sock in [self._server, *self._clients]:
            sock.close()


@pytest.mark.parametrize(("pool", "concurrency"), [("prefork", 2), ("gevent", 20)])
def test_an_attempt_no_timeout_ends_is_cut_at_the_soft_time_limit_and_retried(
    pool: str, concurrency: int, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    smtp = TricklingSmtp()
    ok = HttpTarget()
    mail = {
        "name": "mail",
        "type": "email",
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp.port,
            "starttls": False,
            "from": "a@example.com",
            "to": ["b@example.com"],
        },
    }
    # Limits from a 0.2 s timeout: soft 5.4 s, hard 10.4 s.
    pipeline = Pipeline(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        [mail, {"name": "ok", "type": "webhook", "url": ok.url}],
        PUBLISHING_HTTP_TIMEOUT_S="0.2",
    )
    try:
        pipeline.worker(pool=pool, concurrency=concurrency)
        (stuck,) = pipeline.submit(alerts(am_alert("Stuck")), ["mail"]).jobs
        started = time.monotonic()

        retried = wait_until(lambda: (s := pipeline.job(stuck.id)).retry_count >= 1 and s, timeout_s=20)
        assert time.monotonic() - started >= 5.0
        assert "SoftTimeLimitExceeded" in (retried.last_error or "")
        (behind,) = pipeline.submit(alerts(am_alert("Behind")), ["ok"]).jobs
        pipeline.wait_state(behind.id, JobState.SUCCEEDED)
        log = (tmp_path / "worker-w1.log").read_text()
        assert "Hard time limit" not in log, log[-3000:]
    finally:
        smtp.stop()
        pipeline.close()
        ok.stop()


def test_a_gevent_worker_with_a_hundred_slots_acknowledges_every_job_it_delivers(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    # Every slot answered at once: a hundred acknowledgements at the same moment.
    target = HttpTarget([Reply(200, delay_s=1.0)])
    pipeline = Pipeline(
        tmp_path, fresh_redis, dlq_database_url, [{"name": "ok", "type": "webhook", "url": target.url}]
    )
    try:
        raw = [am_alert("Storm", severity="warning", instance=f"h{i}") for i in range(300)]
        jobs = pipeline.submit(alerts(*raw), ["ok"]).jobs
        worker = pipeline.worker(pool="gevent", concurrency=100)
        for job in jobs:
            pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=60)
        worker.stop()

        # Every delivered job was acknowledged: none is left for Redis to hand out again.
        assert pipeline.redis.hlen("unacked") == 0
        log = (tmp_path / "worker-w1.log").read_text()
        assert "Couldn't ack" not in log and "MaxConnectionsError" not in log, log[-3000:]
        # Every slot kept its connection to the target alive for the next job.
        assert "Connection pool is full" not in log, log[-3000:]
        assert sorted(r.headers["Idempotency-Key"] for r in target.received) == sorted(j.id for j in jobs)
    finally:
        pipeline.close()
        target.stop()
