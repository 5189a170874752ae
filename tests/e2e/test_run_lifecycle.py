"""``make run`` restarted as a user restarts it: the API comes back on the documented port
though the last run's connections linger in TIME-WAIT, a port another process holds stops
the run with a line naming it, and a supervisor killed outright takes every process with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.runs import MakeRun, run_env
from tests.support.fleet import ROOT
from tests.support.private_services import free_port

pytestmark = pytest.mark.slow


def time_wait_on(port: int) -> None:
    """Leave a connection of ``port`` in TIME-WAIT: the listening side closes first, as a
    server does when it stops."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()
        client.close()
    with socket.socket() as probe, pytest.raises(OSError):
        probe.bind(("127.0.0.1", port))  # what the old probe did: it would give up on the port


def test_restarts_keep_the_documented_port_and_leave_no_process(tmp_path: Path) -> None:
    env = run_env(tmp_path, redis_port=free_port())
    port = int(env["PUBLISHING_API_PORT"])
    runs: list[MakeRun] = []
    try:
        for attempt in range(3):
            time_wait_on(port)
            run = MakeRun(env, tmp_path / f"run{attempt}.log")
            runs.append(run)
            run.wait_ready()
            assert f"API      http://127.0.0.1:{port}" in run.output()
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            if attempt == 1:
                # kill -9 of the supervisor: its children follow it (PR_SET_PDEATHSIG).
                os.kill(run.runner(), signal.SIGKILL)
                run.wait(30)
            else:
                # Ctrl-C: make dies of the SIGINT it forwarded, once the supervisor has stopped.
                assert run.interrupt() in (0, -signal.SIGINT), run.output()
                assert "[run] stopped" in run.output()
            assert run.leftovers() == [], run.output()
    finally:
        for run in runs:
            run.kill()


def test_a_port_in_use_stops_the_run_naming_it_and_its_holder(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    port = int(env["FLOWER_PORT"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = subprocess.run(
            ["make", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    (line,) = [line for line in output.splitlines() if line.startswith("[run] port ")]
    assert f"port {port} is in use by pid {os.getpid()}" in line
    assert "FLOWER_PORT" in line
    assert "Traceback" not in output
