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
        except (requests.ConnectionError, requests.Timeout):
            # gunicorn binds before its worker has loaded the app: a connection may be taken
            # and not answered yet.
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


ENTRY_POINTS = {
    "gunicorn": [sys.executable, "-m", "gunicorn", "api.wsgi:app", "-b", "127.0.0.1:{port}", "-w", "2"],
    "gunicorn-config": [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "-b", "127.0.0.1:{port}",
                        "api.wsgi:app"],
    "python-m-api": [sys.executable, "-m", "api", "--host", "0.0.0.0", "--port", "{port}"],
    "flask-run": [sys.executable, "-m", "flask", "--app", "api.wsgi", "run", "--port", "{port}"],
}  # fmt: skip


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_no_entry_point_starts_without_tokens(env, entry_point) -> None:
    env = {k: v for k, v in env.items() if k not in ("PUBLISHING_API_TOKENS", "PUBLISHING_INSECURE_NO_AUTH")}
    port = str(free_port())
    refused = subprocess.run(
        [part.replace("{port}", port) for part in ENTRY_POINTS[entry_point]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    # One line (once a gunicorn worker, which all stop at once), no traceback.
    lines = {line for line in refused.stderr.splitlines() if line.startswith("publishing API: ")}
    assert len(lines) == 1, refused.stderr
    (line,) = lines
    assert "PUBLISHING_API_TOKENS" in line and "PUBLISHING_INSECURE_NO_AUTH=1" in line
    # Not a traceback of ours. (Without the config, gunicorn's arbiter may print its own when
    # several workers refuse at once; the config refuses in the master, before any worker.)
    assert "ConfigError" not in refused.stderr and "api/" not in refused.stderr
    if entry_point != "gunicorn":
        assert "Traceback" not in refused.stderr


def test_the_insecure_switch_lets_every_caller_in_and_says_so(env, tmp_path) -> None:
    env = {k: v for k, v in env.items() if k != "PUBLISHING_API_TOKENS"}
    env["PUBLISHING_INSECURE_NO_AUTH"] = "1"
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "api.wsgi:app", "-b", f"127.0.0.1:{port}", "-w", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert process.poll() is None, log_path.read_text()
                try:
                    return requests.get(f"{url}/readyz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(ready, 20, 0.1)
            assert requests.get(f"{url}/readyz", timeout=5).json()["auth"] == "off"
            purge = requests.delete(f"{url}/api/v2/publishing/dlq/purge", timeout=5)
            assert purge.status_code == 200, purge.text
        finally:
            process.terminate()
            process.wait(20)
    warnings = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and "PUBLISHING_INSECURE_NO_AUTH" in line
    ]
    assert warnings and all(w["level"] == "warning" for w in warnings)
