"""The processes as the systemd units in ``deploy/systemd/`` run them (migrations, the API with
``deploy/gunicorn.conf.py``, a worker, Flower): every line each one writes is a JSON object, and
no target secret appears in any."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.fleet import ROOT, wait_until
from tests.support.http_target import HttpTarget
from tests.support.pipeline import alertmanager_payload, am_alert
from tests.support.private_services import free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]

UNITS = ROOT / "deploy" / "systemd"
TOKEN = "admin-deploy-logs-token-0001"
SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LW9mLTMyLWJ5dGVzISE="


def exec_start(unit: str, port: int) -> list[str]:
    """The unit's ExecStart, its binaries from this virtualenv and its port a free one."""
    line = next(line for line in (UNITS / unit).read_text().splitlines() if line.startswith("ExecStart="))
    words = shlex.split(line.removeprefix("ExecStart=").replace("%%", "%"))
    words[0] = str(Path(sys.executable).parent / Path(words[0]).name)
    return [
        w.replace("0.0.0.0:8080", f"127.0.0.1:{port}").replace("--port=5555", f"--port={port}") for w in words
    ]


def test_every_line_of_every_deployed_process_is_json(redis_url: str, tmp_path: Path) -> None:
    with HttpTarget() as hook:
        targets = tmp_path / "targets.yaml"
        targets.write_text(
            f"targets:\n  - {{name: hook, type: webhook, url: '{hook.url}/in', signing_secret: '{SECRET}'}}\n"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PUBLISHING_")},
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{tmp_path}/dlq.db",
            "PUBLISHING_TARGETS": str(targets),
            "PUBLISHING_API_TOKENS": f"admin:{TOKEN}",
            "FLOWER_BASIC_AUTH": "operator:a-long-enough-password",
            "PUBLISHING_WORKER_METRICS_PORT": str(free_port()),
        }
        logs = {name: tmp_path / f"{name}.log" for name in ("migrate", "api", "worker", "flower")}
        with logs["migrate"].open("wb") as out:
            subprocess.run(exec_start("publishing-migrate.service", 0), cwd=ROOT, env=env, stdout=out,
                           stderr=subprocess.STDOUT, check=True, timeout=60)  # fmt: skip
        api_port, flower_port = free_port(), free_port()
        units = {
            "api": ("publishing-api.service", api_port),
            "worker": ("publishing-worker.service", 0),
            "flower": ("publishing-flower.service", flower_port),
        }
        processes = []
        try:
            for name, (unit, port) in units.items():
                with logs[name].open("wb") as out:
                    processes.append(
                        subprocess.Popen(
                            exec_start(unit, port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                        )
                    )
            api = f"http://127.0.0.1:{api_port}"
            wait_until(lambda: _answers(api + "/readyz"), 30, 0.2)
            wait_until(lambda: _answers(f"http://127.0.0.1:{flower_port}/healthcheck"), 30, 0.2)
            response = requests.post(
                api + "/webhook",
                json=alertmanager_payload(am_alert("JsonEverywhere")),
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
            assert response.status_code == 202, response.text
            hook.wait_for(1, 30)
            assert requests.get(api + "/no-such-page", timeout=5).status_code == 404
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(30)
    for name, path in logs.items():
        lines = path.read_text().splitlines()
        assert lines, name
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{name}: not JSON: {line!r}")
            assert isinstance(record, dict) and {"ts", "level", "message"} <= set(record), (name, line)
            assert SECRET not in line and "c2VjcmV0LXNpZ25pbmc" not in line, (name, line)
    api_lines = logs["api"].read_text()
    assert '"logger": "gunicorn.access"' in api_lines and "/no-such-page" in api_lines
    assert '"logger": "gunicorn.error"' in api_lines


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
