"""A loopback HTTP target for fault tests: like ``HttpTarget`` it records every request, but it
also records how each one ended (the status it answered and when), so a test can tell a
delivery (answered 2xx) from an attempt, measure overlap, and script replies by time or by
request (a flapping target, a poison job that kills its worker).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http_target import Reply


@dataclass
class Hit:
    """One request as the target saw it; ``status`` and ``done`` are set just before the
    reply is written, so a request that arrives after ``done`` was sent after this reply."""

    target: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int
    at: float  # time.monotonic() on arrival
    tag: str | None = None
    status: int | None = None
    done: float | None = None

    @property
    def job_id(self) -> str | None:
        return self.headers.get("Idempotency-Key")

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)

    def fingerprint(self) -> str | None:
        """The alert's fingerprint in any of our payload formats."""
        try:
            body = self.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        if "dedup_key" in body:  # pagerduty
            return body["dedup_key"]
        if body.get("alerts"):  # alertmanager
            return body["alerts"][0].get("fingerprint")
        return body.get("fingerprint") or body.get("external_id")  # webhook, rootly


Responder = Callable[[Hit], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class FaultTarget:
    def __init__(
        self,
        name: str,
        responder: Responder | Reply | None = None,
        *,
        tag: Callable[[], str | None] | None = None,
    ) -> None:
        self.name = name
        self._responder: Responder = _constant(responder or Reply())
        self._tag = tag
        self._lock = threading.Lock()
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: without this, Nagle holds the body back
            # until the client's delayed ACK (about 40 ms a reply on a kept-alive connection).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hit = Hit(
                    target.name,
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    body,
                    self.client_address[1],
                    time.monotonic(),
                )
                target._arrive(hit)
                try:
                    reply = target._responder(hit)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    target._leave(hit, reply.status)
                    payload = reply.body.encode()
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client went away (a killed worker): the reply is lost
                finally:
                    target._leave(hit, None)

            do_POST = do_PUT = do_GET = _handle

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond_with(self, responder: Responder | Reply) -> None:
        self._responder = _constant(responder)

    def tag_with(self, tag: Callable[[], str | None]) -> None:
        """Label every later request, on arrival, with ``tag()`` (say, the breaker's state)."""
        self._tag = tag

    def _arrive(self, hit: Hit) -> None:
        hit.tag = self._tag() if self._tag else None
        with self._lock:
            self.hits.append(hit)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self, hit: Hit, status: int | None) -> None:
        with self._lock:
            if hit.done is not None:
                return
            hit.done = time.monotonic()
            hit.status = status
            self.in_flight -= 1

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)

    def delivered(self) -> list[Hit]:
        return [h for h in self.snapshot() if h.delivered]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _constant(responder: Responder | Reply) -> Responder:
    if isinstance(responder, Reply):
        return lambda hit: responder
    return responder


class Flapping:
    """Up for ``up_s``, down for ``down_s``, repeating from ``start`` (monotonic): up answers
    ``up``, down answers ``down``."""

    def __init__(self, up: Reply, down: Reply, *, up_s: float, down_s: float) -> None:
        self.up, self.down = up, down
        self.up_s, self.down_s = up_s, down_s
        self.start = time.monotonic()

    def is_up(self, at: float) -> bool:
        return (at - self.start) % (self.up_s + self.down_s) < self.up_s

    def __call__(self, hit: Hit) -> Reply:
        return self.up if self.is_up(hit.at) else self.down
