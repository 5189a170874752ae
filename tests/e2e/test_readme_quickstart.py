"""The README's quick start, run as written: the shell blocks marked ``<!-- quickstart -->``
in order, the one marked ``<!-- quickstart: background -->`` left running (it is ``make run``)
until it says ready. It runs in a copy of the repository (links to it, with a ``var/`` and a
``targets.yaml`` of its own) with a private Redis; only when another process holds port 8080
is the port in the text replaced by a free one."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.runs import alive, descendants
from tests.support.fleet import ROOT, wait_until
from tests.support.private_services import free_port, free_port_pair

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"<!-- quickstart(?P<mode>: background)? -->\s*```sh\n(?P<code>.*?)```", re.DOTALL)


def quickstart() -> list[tuple[bool, str]]:
    blocks = [(bool(m["mode"]), m["code"]) for m in BLOCK.finditer((ROOT / "README.md").read_text())]
    assert blocks, "the README has no quickstart blocks"
    return blocks


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_readme_quick_start_works_as_written(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("var", "targets.yaml"):
            (repo / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUBLISHING_", "FLOWER_"))}
    env.update(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nothing there: make run starts its own
        PUBLISHING_VAR_DIR=str(repo / "var"),  # the copy's var/ (run.py lives behind a link)
        PUBLISHING_WORKER_METRICS_PORT=str(free_port_pair()),
    )
    ports = {"8080": "PUBLISHING_API_PORT", "5555": "FLOWER_PORT"}
    replace = {}
    for port, variable in ports.items():
        if not _free(int(port)):
            replace[port] = str(free_port())
            env[variable] = replace[port]
    background: subprocess.Popen[bytes] | None = None
    started: list[int] = []
    log = tmp_path / "make-run.log"
    try:
        for is_background, code in quickstart():
            for old, new in replace.items():
                code = code.replace(f":{old}", f":{new}")
            if is_background:
                with log.open("wb") as out:
                    process = background = subprocess.Popen(
                        ["bash", "-e", "-c", code], cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip

                def ready(process: subprocess.Popen[bytes] = process) -> bool:
                    assert process.poll() is None, log.read_text()
                    return "[run] ready:" in log.read_text()

                wait_until(ready, 120, 0.3)
                started = descendants(background.pid)
                continue
            result = subprocess.run(
                ["bash", "-e", "-c", code], cwd=repo, env=env, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, (code, result.stdout, result.stderr)
            last = result.stdout
        answer = json.loads(last)
        (job,) = answer["jobs"]
        assert job["target"] == "ops-webhook"
    finally:
        if background is not None and background.poll() is None:
            os.killpg(background.pid, signal.SIGINT)
            background.wait(60)
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
