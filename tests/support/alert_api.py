"""The real API for fault tests, and a client that sends alerts to it as Alertmanager does.

``ApiThread`` serves ``create_app(settings)`` with werkzeug in a thread of the test process;
``GunicornApi`` runs ``gunicorn api.wsgi:app`` as a process (for several replicas).
``AlertSender`` POSTs Alertmanager v4 payloads to ``/webhook`` and, like Alertmanager, sends a
payload again after a 5xx or a refused connection; only what a 202 accepted is counted.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from publishing.settings import Settings
from tests.support.fleet import ROOT, wait_until
from tests.support.private_services import free_port


class ApiThread:
    def __init__(self, settings: Settings) -> None:
        from api import create_app

        if not settings.api_tokens:  # a test API on loopback, called without tokens
            settings = dataclasses.replace(settings, insecure_no_auth=True)
        self.app = create_app(settings)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GunicornApi:
    def __init__(self, env: Mapping[str, str], log_path: Path, *, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "ab")  # noqa: SIM115
        env = {**os.environ, **env}
        if not env.get("PUBLISHING_API_TOKENS"):  # a test API on loopback, called without tokens
            env["PUBLISHING_INSECURE_NO_AUTH"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "api.wsgi:app", "-b", f"127.0.0.1:{self.port}",
             "-w", str(workers), "--threads", "4"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout_s: float = 30.0) -> GunicornApi:
        def serving() -> bool:
            assert self.process.poll() is None, "gunicorn exited"
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(serving, timeout_s, 0.1)
        return self

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class AlertSender:
    """Sends payloads until a 202, backing off a little after each 5xx or refused connection."""

    def __init__(self, url: str, *, token: str | None = None, give_up_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.give_up_s = give_up_s
        self._lock = threading.Lock()
        self.accepted: list[dict[str, Any]] = []
        self.resends = 0
        self.statuses: dict[int, int] = {}

    def send(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.give_up_s
        while True:
            try:
                response = self.session.post(f"{self.url}/webhook", json=payload, timeout=15)
                status = response.status_code
            except requests.RequestException:
                status = 0
            with self._lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202:
                jobs = list(response.json()["jobs"])
                with self._lock:
                    self.accepted += jobs
                return jobs
            if status not in (0, 500, 502, 503, 504):
                raise AssertionError(f"POST /webhook answered {status}: {response.text[:500]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"POST /webhook not accepted within {self.give_up_s} s (last {status})")
            with self._lock:
                self.resends += 1
            time.sleep(0.25)

    def close(self) -> None:
        self.session.close()


def send_all(
    sender: AlertSender, payloads: list[dict[str, Any]], *, threads: int = 2, pace_s: float = 0.0
) -> None:
    """Send every payload from ``threads`` threads, each pausing ``pace_s`` between sends."""
    errors: list[BaseException] = []
    chunks = [payloads[i::threads] for i in range(threads)]

    def run(chunk: list[dict[str, Any]]) -> None:
        try:
            for payload in chunk:
                sender.send(payload)
                if pace_s:
                    time.sleep(pace_s)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


class Background:
    """``send_all`` in a background thread, so a test can inject a fault while it runs."""

    def __init__(self, sender: AlertSender, payloads: list[dict[str, Any]], **options: Any) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                send_all(sender, payloads, **options)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self, timeout_s: float = 120.0) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the sender did not finish"
        if self.error is not None:
            raise self.error
