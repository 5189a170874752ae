"""``make run`` and ``make demo`` driven as a user drives them: in a terminal of their own (a
session, so Ctrl-C and a closed terminal reach make and its supervisor as they would), with
a private redis-server that ``make run`` starts itself and every port chosen free."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.fleet import ROOT, wait_until
from tests.support.private_services import free_port, free_port_pair


def run_env(var: Path, redis_port: int | None = None, **more: str) -> dict[str, str]:
    """A run's environment: state under ``var``, a Redis that nothing answers at first (so make
    run starts its own there), free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUBLISHING_", "FLOWER_"))}
    env.update(
        REDIS_URL=f"redis://127.0.0.1:{redis_port or free_port()}/0",
        DATABASE_URL=f"sqlite:///{var}/publishing.db",
        PUBLISHING_VAR_DIR=str(var),
        PUBLISHING_API_PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
        PUBLISHING_WORKER_METRICS_PORT=str(free_port_pair()),
        **more,
    )
    return env


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


class MakeRun:
    """One ``make run`` (or ``make demo``), its output in ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, target: str = "run") -> None:
        self.env = env
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            ["make", target],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started: list[int] = []

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['PUBLISHING_API_PORT']}"

    @property
    def flower(self) -> str:
        return f"http://127.0.0.1:{self.env['FLOWER_PORT']}"

    @property
    def var(self) -> Path:
        return Path(self.env["PUBLISHING_VAR_DIR"])

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 90) -> MakeRun:
        def ready() -> bool:
            assert self.process.poll() is None, self.output()
            return "[run] ready:" in self.output()

        wait_until(ready, timeout_s, 0.2)
        self.started = descendants(self.process.pid)
        return self

    def runner(self) -> int:
        (pid,) = [
            p
            for p in children(self.process.pid)
            if "deploy/local/run.py" in Path(f"/proc/{p}/cmdline").read_text()
        ]
        return pid

    def token(self) -> str:
        return (self.var / "api-token").read_text().strip()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def flower_auth(self) -> tuple[str, str]:
        user, _, password = (self.var / "flower-credentials").read_text().strip().partition(":")
        return user, password

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(self.api + path, headers=self.headers(), params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def interrupt(self, signum: int = signal.SIGINT, timeout_s: float = 60) -> int:
        """The signal to the terminal's foreground group (Ctrl-C, or SIGHUP when it closes)."""
        os.killpg(self.process.pid, signum)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = 60) -> int:
        try:
            return self.process.wait(timeout_s)
        finally:
            self._log.close()

    def leftovers(self, timeout_s: float = 30) -> list[int]:
        """The processes of the run still alive after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(alive(p) for p in self.started):
            time.sleep(0.2)
        return [p for p in self.started if alive(p)]

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in self.started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()
