"""``make run`` as a newcomer runs it: with nothing but redis-server installed it starts a
private Redis, migrates, serves the API behind an admin token it keeps in ``var/api-token``,
delivers an alert, and stops every process on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.fleet import ROOT, wait_until
from tests.support.http_target import HttpTarget
from tests.support.pipeline import alertmanager_payload, am_alert
from tests.support.private_services import free_port, free_port_pair

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    result, stack = [], [pid]
    while stack:
        for child in children(stack.pop()):
            result.append(child)
            stack.append(child)
    return result


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_make_run_serves_delivers_and_stops_cleanly(tmp_path: Path) -> None:
    api_port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing there: make run starts one
        "DATABASE_URL": f"sqlite:///{tmp_path}/publishing.db",
        "PUBLISHING_VAR_DIR": str(tmp_path),
        "PUBLISHING_API_PORT": str(api_port),
        "FLOWER_PORT": str(free_port()),
        "PUBLISHING_WORKER_METRICS_PORT": str(free_port_pair()),
    }
    with HttpTarget() as hook:
        targets = tmp_path / "targets.yaml"
        targets.write_text(f"targets:\n  - {{name: hook, type: webhook, url: '{hook.url}'}}\n")
        env["PUBLISHING_TARGETS"] = str(targets)
        log = (tmp_path / "run.log").open("wb")
        make = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started: list[int] = []
        try:
            base = f"http://127.0.0.1:{api_port}"
            wait_until(lambda: _status(base + "/readyz") == 200, 90, 0.5)
            started = descendants(make.pid)
            token_file = tmp_path / "api-token"
            assert token_file.stat().st_mode & 0o777 == 0o600
            token = token_file.read_text().strip()
            payload = alertmanager_payload(am_alert("FromMakeRun"))
            refused = requests.post(base + "/webhook", json=payload, timeout=5)
            assert refused.status_code == 401, refused.text
            response = requests.post(
                base + "/webhook", json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=5
            )
            assert response.status_code == 202, response.text
            (job,) = response.json()["jobs"]
            (request,) = hook.wait_for(1, 30)
            assert request.headers["Idempotency-Key"] == job["id"]

            (runner,) = [
                p
                for p in children(make.pid)
                if "deploy/local/run.py" in Path(f"/proc/{p}/cmdline").read_text()
            ]
            os.kill(runner, signal.SIGTERM)
            assert make.wait(60) == 0
            time.sleep(0.5)
            assert [p for p in started if alive(p)] == []
            output = (tmp_path / "run.log").read_text()
            assert "starting a private redis-server" in output
            assert f"API token (admin) in {token_file}" in output
            assert token not in output
            assert "stopped" in output
        finally:
            if make.poll() is None:
                make.kill()
            for pid in started:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None
