"""The API over HTTP against the real pipeline: Redis, PostgreSQL, a worker process started as
an operator starts it, and loopback HTTP servers standing in for the targets (docs/design.md (Dead-letter queue); docs/design.md (Job states); docs/design.md (API and access))."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from api import create_app
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter
from publishing.priority import Priority
from publishing.settings import Settings
from tests.support.fleet import wait_until, write_targets
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alertmanager_payload, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

ADMIN_TOKEN = "admin-integration-token-0001"
READER_TOKEN = "reader-integration-token-0001"
API = "/api/v2/publishing"


class ApiServer:
    """The Flask app under werkzeug on a free loopback port, served from a thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.call("GET", path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.session.close()


@pytest.fixture
def targets() -> Iterator[dict[str, HttpTarget]]:
    servers = {name: HttpTarget() for name in ("alpha", "beta")}
    yield servers
    for server in servers.values():
        server.stop()


def config(servers: dict[str, HttpTarget]) -> list[dict[str, Any]]:
    return [
        {"name": f"{name}-hook", "type": "webhook", "url": f"{server.url}/{name}"}
        for name, server in servers.items()
    ]


@pytest.fixture
def stack(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, targets
) -> Iterator[tuple[Pipeline, ApiServer]]:
    pipeline = Pipeline(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        config(targets),
        PUBLISHING_API_TOKENS=f"admin:{ADMIN_TOKEN},reader:{READER_TOKEN}",
    )
    server = ApiServer(pipeline.settings)
    yield pipeline, server
    server.stop()
    pipeline.close()


def two_alerts() -> dict[str, Any]:
    return alertmanager_payload(
        am_alert("DiskFull", instance="db-1"), am_alert("CpuHot", "warning", instance="db-2")
    )


def wait_job(server: ApiServer, job_id: str, *states: str, timeout_s: float = 20.0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = server.get(f"{API}/jobs/{job_id}")
        return job if job["state"] in states else None

    return wait_until(reached, timeout_s)


def test_two_alerts_to_two_targets_are_four_jobs_and_a_resend_is_a_duplicate(stack, targets) -> None:
    pipeline, server = stack
    response = server.call("POST", "/webhook", json=two_alerts())
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    assert len(jobs) == 4
    assert {(j["target"], j["priority"]) for j in jobs} == {
        ("alpha-hook", "high"), ("beta-hook", "high"), ("alpha-hook", "medium"), ("beta-hook", "medium"),
    }  # fmt: skip
    listed = server.get(f"{API}/jobs")
    assert listed["total"] == 4
    assert {j["id"] for j in listed["jobs"]} == {j["id"] for j in jobs}

    again = server.call("POST", "/webhook", json=two_alerts())
    assert again.status_code == 202
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in jobs]
    assert all(j["duplicate"] for j in again.json()["jobs"])
    assert server.get(f"{API}/jobs")["total"] == 4
    assert server.get(f"{API}/queue/status") == {"depth": {"high": 2, "medium": 2, "low": 0}, "total": 4}

    pipeline.worker()
    for job in jobs:
        wait_job(server, job["id"], "succeeded")
    assert len(targets["alpha"].received) == len(targets["beta"].received) == 2
    assert server.get(f"{API}/jobs?state=succeeded&target=alpha-hook")["total"] == 2


def test_a_dead_letter_replayed_after_the_fix_is_delivered_and_recorded(stack, targets) -> None:
    pipeline, server = stack
    alpha = targets["alpha"]
    alpha.script([Reply(400, body='{"error":"bad routing"}')])
    pipeline.worker()
    payload = alertmanager_payload(am_alert("Broken", instance="x"))
    jobs = server.call("POST", "/webhook", json=payload).json()["jobs"]
    alpha_job = next(j for j in jobs if j["target"] == "alpha-hook")
    wait_job(server, alpha_job["id"], "dlq")

    (row,) = server.get(f"{API}/dlq", params={"target": "alpha-hook"})["entries"]
    assert (row["job_id"], row["error_type"], row["replayed"]) == (alpha_job["id"], "permanent", False)

    alpha.script([Reply(200)])
    replay = server.call("POST", f"{API}/dlq/{row['id']}/replay")
    assert replay.status_code == 202, replay.text
    replay_job = replay.json()["job_id"]
    assert replay.json()["dead_letter_id"] == row["id"]
    wait_job(server, replay_job, "succeeded")

    def recorded() -> dict[str, Any] | None:
        current = server.get(f"{API}/dlq/{row['id']}")
        return current if current["replay_result"] == "success" else None

    final = wait_until(recorded, 15)
    assert final["replayed"] is True
    assert final["replay_job_id"] == replay_job
    assert alpha.received[-1].headers["Idempotency-Key"] == replay_job

    second = server.call("POST", f"{API}/dlq/{row['id']}/replay")
    assert second.status_code == 409
    assert second.json()["error"] == "already_replayed"
    assert second.json()["details"]["replay_job_id"] == replay_job
    assert server.call("POST", f"{API}/dlq/{uuid.uuid4()}/replay").status_code == 404
    assert server.call("POST", f"{API}/dlq/not-a-row/replay").status_code == 404


def test_bulk_replay_dry_run_lists_then_a_run_replays_with_progress(stack, targets) -> None:
    pipeline, server = stack
    alpha = targets["alpha"]
    alpha.script([Reply(422)])
    pipeline.worker()
    payload = alertmanager_payload(*(am_alert(f"Bad{i}", "warning", instance=f"h{i}") for i in range(3)))
    jobs = server.call(
        "POST", f"{API}/submit", json={**_as_enriched(payload), "targets": ["alpha-hook"]}
    ).json()["jobs"]
    for job in jobs:
        wait_job(server, job["id"], "dlq")
    rows = server.get(f"{API}/dlq", params={"target": "alpha-hook", "replayed": "false"})["entries"]
    assert len(rows) == 3
    alpha.script([Reply(200)])
    seen = len(alpha.received)

    dry = server.call("POST", f"{API}/dlq/replay", json={"target": "alpha-hook", "dry_run": True})
    assert dry.status_code == 202, dry.text
    assert dry.json()["dry_run"] is True
    assert sorted(dry.json()["ids"]) == sorted(r["id"] for r in rows)
    time.sleep(1.0)
    assert len(alpha.received) == seen
    assert server.get(f"{API}/queue/status")["total"] == 0
    assert server.get(f"{API}/dlq", params={"replayed": "true"})["total"] == 0

    run = server.call("POST", f"{API}/dlq/replay", json={"target": "alpha-hook"})
    assert run.status_code == 202, run.text
    assert (run.json()["total"], run.json()["dry_run"]) == (3, False)
    location = run.headers["Location"]

    def finished() -> dict[str, Any] | None:
        progress = server.get(location)
        return progress if progress["state"] in ("done", "failed") else None

    progress = wait_until(finished, 30)
    assert (progress["state"], progress["done"], progress["failed"], progress["total"]) == ("done", 3, 0, 3)
    assert progress["finished_at"] is not None

    def delivered() -> bool:
        current = server.get(f"{API}/dlq", params={"target": "alpha-hook"})["entries"]
        return all(r["replay_result"] == "success" for r in current)

    wait_until(delivered, 20)
    assert len(alpha.received) == seen + 3


def _as_enriched(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "alert": {
                    "status": a["status"],
                    "labels": a["labels"],
                    "annotations": a["annotations"],
                    "starts_at": a["startsAt"],
                }
            }
            for a in payload["alerts"]
        ]
    }


def _row(failed_at: datetime, *, replayed: bool) -> DeadLetter:
    return DeadLetter(
        id=str(uuid.uuid4()),
        job_id=str(uuid.uuid4()),
        fingerprint="fp",
        target_name="alpha-hook",
        target_type="webhook",
        enriched_alert={
            "alert": {"alert_name": "Old", "status": "firing", "starts_at": "2026-01-01T00:00:00Z"}
        },
        target_config={"name": "alpha-hook"},
        error_message="HTTP 400",
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority.MEDIUM,
        failed_at=failed_at,
        replayed=replayed,
        replayed_at=failed_at if replayed else None,
        replay_job_id=str(uuid.uuid4()) if replayed else None,
    )


def test_purge_removes_only_rows_older_than_the_cut(stack) -> None:
    pipeline, server = stack
    now = datetime.now(UTC)
    old_replayed = _row(now - timedelta(days=9), replayed=True)
    old_waiting = _row(now - timedelta(days=8), replayed=False)
    recent_replayed = _row(now - timedelta(days=2), replayed=True)
    for row in (old_replayed, old_waiting, recent_replayed):
        pipeline.dead_letters.write(row)

    def remaining() -> set[str]:
        return {e["id"] for e in server.get(f"{API}/dlq")["entries"]}

    response = server.call("DELETE", f"{API}/dlq/purge", params={"older_than": "7d", "replayed_only": "true"})
    assert response.status_code == 200, response.text
    assert response.json()["deleted_count"] == 1
    assert remaining() == {old_waiting.id, recent_replayed.id}

    response = server.call("DELETE", f"{API}/dlq/purge", params={"older_than": "168h"})
    assert response.json()["deleted_count"] == 1
    assert remaining() == {recent_replayed.id}

    bad = server.call("DELETE", f"{API}/dlq/purge", params={"older_than": "a week"})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_parameter")
    reader = server.call("DELETE", f"{API}/dlq/purge", headers={"Authorization": f"Bearer {READER_TOKEN}"})
    assert reader.status_code == 403
    assert remaining() == {recent_replayed.id}


def test_stats_targets_breakers_and_a_test_alert(stack, targets) -> None:
    pipeline, server = stack
    server.call("POST", "/webhook", json=two_alerts())
    stats = server.get(f"{API}/queue/stats")
    assert stats["queues"]["high"]["depth"] == 2
    assert stats["queues"]["high"]["oldest_age_s"] >= 0
    assert stats["jobs"]["submitted"] == 4
    assert stats["breakers"] == {"alpha-hook": "closed", "beta-hook": "closed"}
    assert stats["workers"]["count"] == 0

    pipeline.worker()
    stats = wait_until(lambda: (s := server.get(f"{API}/queue/stats"))["workers"]["count"] and s, 10)
    assert stats["workers"]["names"][0].startswith("w1@")

    names = [t["name"] for t in server.get(f"{API}/targets")["targets"]]
    assert names == ["alpha-hook", "beta-hook"]
    test = server.call("POST", f"{API}/targets/beta-hook/test")
    assert test.status_code == 202, test.text
    wait_job(server, test.json()["job_id"], "succeeded")
    assert targets["beta"].received[-1].json()["alert_name"] == "PublishingTestAlert"

    reset = server.call("POST", f"{API}/breakers/alpha-hook/reset")
    assert (reset.status_code, reset.json()["state"]) == (200, "closed")
    assert [b["target"] for b in server.get(f"{API}/breakers")["breakers"]] == ["alpha-hook", "beta-hook"]


def test_readyz_is_ok_with_redis_and_the_database(stack) -> None:
    _, server = stack
    response = requests.get(server.url + "/readyz", timeout=10)
    assert (response.status_code, response.json()) == (
        200,
        {"redis": "ok", "database": "ok", "auth": "tokens"},
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_readyz_is_503_naming_redis_when_redis_is_down(dlq_database_url: str, tmp_path: Path) -> None:
    hook = [{"name": "alpha-hook", "type": "webhook", "url": "http://127.0.0.1:9/alpha"}]
    settings = Settings.from_env(
        {
            "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
            "DATABASE_URL": dlq_database_url,
            "PUBLISHING_TARGETS": str(write_targets(tmp_path / "targets.yaml", hook)),
            "PUBLISHING_API_TOKENS": f"admin:{ADMIN_TOKEN}",
        }
    )
    server = ApiServer(settings)
    try:
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        response = requests.get(server.url + "/readyz", timeout=30)
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "not_ready"
        assert "redis" in body["message"]
        assert body["details"]["redis"].startswith("down")
        assert body["details"]["database"] == "ok"

        submit = server.call("POST", "/webhook", json=two_alerts())
        assert submit.status_code == 503
        assert submit.json()["details"]["dependency"] == "redis"
    finally:
        server.stop()


def test_readyz_is_503_naming_the_database_when_it_is_down(fresh_redis: str) -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": fresh_redis,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/nothing",
            "PUBLISHING_API_TOKENS": f"admin:{ADMIN_TOKEN}",
        }
    )
    server = ApiServer(settings)
    try:
        response = requests.get(server.url + "/readyz", timeout=30)
        assert response.status_code == 503
        assert response.json()["details"] == {**response.json()["details"], "redis": "ok"}
        assert response.json()["details"]["database"].startswith("down")
        listing = server.call("GET", f"{API}/dlq")
        assert (listing.status_code, listing.json()["details"]["dependency"]) == (503, "database")
    finally:
        server.stop()
