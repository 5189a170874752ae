"""A real HTTP server on loopback that stands in for PagerDuty, Slack, Rootly or a webhook.

It records every request (with its arrival time) and answers from a script: a list of
responses used in order, the last one repeating. A response may delay, hang past the
client's timeout, stream a body piece by piece (endless, trickling, a gzip bomb) while
recording how much of it went out before the client hung up, or the server may refuse
connections altogether (``stop()``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = '{"status":"success"}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    # Answer only once this is set (at most 30 s): requests held together are answered together.
    hold: threading.Event | None = None
    # A body written piece by piece instead of ``body``, a pause before each piece, until the
    # pieces run out or the client hangs up; without a Content-Length in ``headers`` the body
    # ends when the connection closes.
    pieces: Callable[[], Iterable[bytes]] | None = None
    piece_interval_s: float = 0.0


@dataclass(frozen=True)
class Streamed:
    """How a streamed body went: bytes the server wrote, and whether the client hung up first."""

    sent_bytes: int
    client_closed: bool


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


class HttpTarget:
    def __init__(self, replies: list[Reply] | None = None) -> None:
        self._replies = list(replies or [Reply()])
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.streamed: list[Streamed] = []
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
                reply = target._arrive(
                    Received(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                )
                try:
                    if reply.hold is not None:
                        reply.hold.wait(30)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.pieces is not None:
                        self._stream(reply)
                        return
                    payload = reply.body.encode()
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    target._leave()

            def _stream(self, reply: Reply) -> None:
                # A small send buffer, so what the server counts as sent is close to what
                # the client took, not what the kernel held for it.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16_384)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if "content-length" not in {name.lower() for name in reply.headers}:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                sent, closed = 0, False
                try:
                    for piece in reply.pieces():  # type: ignore[misc]
                        if reply.piece_interval_s:
                            time.sleep(reply.piece_interval_s)
                        self.wfile.write(piece)
                        self.wfile.flush()
                        sent += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                self.close_connection = True
                with target._lock:
                    target.streamed.append(Streamed(sent, closed))

            do_POST = do_PUT = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _arrive(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def script(self, replies: list[Reply]) -> None:
        with self._lock:
            self._replies = list(replies)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests, got {len(self.received)} in {timeout_s} s")

    def wait_for_stream(self, timeout_s: float = 30.0) -> Streamed:
        """The outcome of the first streamed body, once the server has stopped writing it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.streamed:
                    return self.streamed[0]
            time.sleep(0.01)
        raise AssertionError(f"no streamed body finished in {timeout_s} s")

    def stop(self) -> None:
        """Stop serving: later connections are refused."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
