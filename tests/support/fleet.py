"""Real worker processes for integration tests, started as an operator starts them
(``celery -A workers.main worker``), with the environment a test chooses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_targets(path: Path, targets: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"targets": targets}))
    return path


def wait_until(predicate: Callable[[], Any], timeout_s: float = 15.0, interval_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


class WorkerProcess:
    """``celery -A workers.main worker`` in a subprocess; stopped with SIGTERM (or killed)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        queues: str = "high,medium,low",
        concurrency: int = 2,
        pool: str = "prefork",
        name: str = "w1",
        log_path: Path | None = None,
    ) -> None:
        self.env = {**os.environ, **env}
        self.args = [
            sys.executable, "-m", "celery", "-A", "workers.main", "worker",
            "-Q", queues, "-c", str(concurrency), "-P", pool, "-n", f"{name}@%h",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        assert self.log_path is not None
        wait_until(lambda: b"ready." in self.log_path.read_bytes(), timeout_s)  # type: ignore[union-attr]

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> WorkerProcess:
        self.start()
        if self.log_path:
            self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
