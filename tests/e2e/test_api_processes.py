"""The API as an operator runs it: migrations with ``alembic``, the API under ``gunicorn
'api.wsgi:app'``, a ``celery`` worker, and the ``publishing`` command line, all as processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.fleet import ROOT, WorkerProcess, wait_until, write_targets
from tests.support.http_target import HttpTarget
from tests.support.pipeline import FAST_RETRIES
from tests.support.services import flush_private_db

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

TOKEN = "admin-e2e-token-000000001"
CLI = Path(sys.executable).parent / "publishing"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    server = HttpTarget()
    yield server
    server.stop()


@pytest.fixture
def env(redis_url: str, postgres_url: str, tmp_path: Path, target: HttpTarget) -> dict[str, str]:
    flush_private_db(redis_url)
    targets = write_targets(
        tmp_path / "targets.yaml", [{"name": "alpha-hook", "type": "webhook", "url": f"{target.url}/alpha"}]
    )
    return {
        **os.environ,
        **FAST_RETRIES,
        "REDIS_URL": redis_url,
        "DATABASE_URL": postgres_url,
        "PUBLISHING_TARGETS": str(targets),
        "PUBLISHING_API_TOKENS": f"admin:{TOKEN}",
        "PUBLISHING_API_TOKEN": TOKEN,
    }


@pytest.fixture
def api_url(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "api.wsgi:app", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(serving, 20, 0.1)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def publishing(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--url", url, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_test_alert_from_the_command_line_reaches_the_target(env, api_url, target, tmp_path) -> None:
    with WorkerProcess(env, log_path=tmp_path / "worker.log"):
        sent = publishing(env, api_url, "-o", "json", "test-alert", "alpha-hook")
        assert sent.returncode == 0, sent.stderr
        job_id = json.loads(sent.stdout)["job_id"]

        def state() -> str | None:
            shown = publishing(env, api_url, "-o", "json", "jobs", job_id)
            return json.loads(shown.stdout)["state"] if shown.returncode == 0 else None

        wait_until(lambda: state() == "succeeded", 30, 0.2)
    (received,) = target.received
    assert received.headers["Idempotency-Key"] == job_id
    assert received.json()["alert_name"] == "PublishingTestAlert"

    status = publishing(env, api_url, "queue", "status")
    assert status.returncode == 0
    assert status.stdout.splitlines()[-1].split() == ["total", "0"]
    missing = publishing(env, api_url, "dlq", "replay", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1
    assert "HTTP 404" in missing.stderr


def test_the_api_refuses_a_public_address_without_tokens(env) -> None:
    env = {k: v for k, v in env.items() if k != "PUBLISHING_API_TOKENS"}
    refused = subprocess.run(
        [sys.executable, "-m", "api", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "refusing to listen on '0.0.0.0'" in refused.stderr
