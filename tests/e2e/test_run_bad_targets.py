"""A bad targets file stops ``make run`` and every process before anything serves: one line
naming the file, the target and the problem, no traceback, a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.runs import run_env
from tests.support.fleet import ROOT
from tests.support.private_services import free_port

pytestmark = pytest.mark.slow

BAD_FILES = {
    # name: (content or None for a missing path, what the line must say)
    "bad-yaml": ("targets:\n  - name: a\n    type: webhook\n   url: [oops\n", ["not valid YAML", "line 4"]),
    "unknown-key": (
        "targets:\n  - {name: hook, type: webhook, urll: 'http://x/y'}\n",
        ["'hook'", "urll", "allowed"],
    ),
    "missing-url": ("targets:\n  - {name: hook, type: webhook}\n", ["'hook'", "url"]),
    "pagerduty-without-routing-key": (
        "targets:\n  - {name: pd, type: pagerduty, url: 'https://events.pagerduty.com/v2/enqueue'}\n",
        ["'pd'", "routing_key"],
    ),
    "wrong-type": (
        "targets:\n  - {name: hook, type: carrier-pigeon, url: 'http://x/y'}\n",
        ["'hook'", "type"],
    ),
    "missing-path": (None, ["does not exist"]),
}


def _targets(tmp_path: Path, case: str) -> Path:
    content, _ = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    if content is not None:
        path.write_text(content)
    return path


def _one_line(output: str, prefix: str, case: str, path: Path) -> None:
    assert "Traceback" not in output, output
    lines = {line for line in output.splitlines() if line.startswith(prefix)}
    assert len(lines) == 1, output
    (line,) = lines
    assert path.name in line, line
    for expected in BAD_FILES[case][1]:
        assert expected in line, (expected, line)


@pytest.mark.parametrize("case", BAD_FILES)
def test_make_run_stops_on_a_bad_targets_file_with_one_line(case: str, tmp_path: Path) -> None:
    path = _targets(tmp_path, case)
    env = run_env(tmp_path, PUBLISHING_TARGETS=str(path))
    result = subprocess.run(["make", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "[run] ready" not in output and "applying migrations" not in output
    _one_line(output, "[run] configuration error: ", case, path)


PROCESSES = {
    "api": [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "-b", "127.0.0.1:{port}", "api.wsgi:app"],
    "worker": [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "-Q", "high,medium,low"],
    "flower": [sys.executable, "-m", "celery", "-A", "workers.main", "flower", "--port={port}", "--address=127.0.0.1"],
}  # fmt: skip
PREFIXES = {"api": "publishing API: ", "worker": "publishing: ", "flower": "publishing: "}


@pytest.mark.parametrize("case", ["unknown-key", "bad-yaml", "missing-path"])
@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_refuses_a_bad_targets_file_with_one_line(
    process: str, case: str, tmp_path: Path
) -> None:
    path = _targets(tmp_path, case)
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PUBLISHING_TARGETS": str(path),
        "PUBLISHING_API_TOKENS": "admin:e2e-bad-targets-token-0001",
        "FLOWER_BASIC_AUTH": "admin:a-long-enough-password",
    }
    command = [part.replace("{port}", str(free_port())) for part in PROCESSES[process]]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    _one_line(result.stdout + result.stderr, PREFIXES[process], case, path)
