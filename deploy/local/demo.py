"""``make demo``: three local fake targets (healthy, flaky, down) and a stream of sample
alerts posted to the API, so a newcomer sees retries, the breaker and the DLQ at work."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

SEVERITIES = ("critical", "warning", "info")


class _Sink(BaseHTTPRequestHandler):
    failure_rate = 0.0
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without this, Nagle holds the body back
    # until the client's delayed ACK (about 40 ms a reply on a kept-alive connection).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 503 if random.random() < self.failure_rate else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _server(failure_rate: float) -> ThreadingHTTPServer:
    handler = type("Sink", (_Sink,), {"failure_rate": failure_rate})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class DemoTargets:
    def __init__(self, targets_file: Path) -> None:
        self.healthy = _server(0.0)
        self.flaky = _server(0.5)
        with socket.socket() as sock:  # a port that was ours and now refuses connections
            sock.bind(("127.0.0.1", 0))
            down_port = sock.getsockname()[1]
        self.targets_file = targets_file
        targets = [
            {"name": "demo-healthy", "type": "webhook", "url": f"http://127.0.0.1:{self.healthy.server_address[1]}/"},
            {"name": "demo-flaky", "type": "webhook", "url": f"http://127.0.0.1:{self.flaky.server_address[1]}/"},
            {"name": "demo-down", "type": "webhook", "url": f"http://127.0.0.1:{down_port}/",
             "filter": {"severity": ["critical", "warning"]}},
        ]  # fmt: skip
        targets_file.write_text(yaml.safe_dump({"targets": targets}))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, api_url: str, token: str | None = None) -> None:
        self._thread = threading.Thread(target=self._stream, args=(api_url, token), daemon=True)
        self._thread.start()
        print("[demo] fake targets: demo-healthy, demo-flaky (50% 503), demo-down (refuses)", flush=True)

    def _stream(self, api_url: str, token: str | None) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for n in itertools.count():
            if self._stop.wait(1.0):
                return
            alert = {
                "status": "firing",
                "labels": {
                    "alertname": f"DemoAlert{n % 7}",
                    "severity": SEVERITIES[n % 3],
                    "instance": f"host-{n}",
                },
                "annotations": {"summary": f"demo alert number {n}"},
                "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "endsAt": "0001-01-01T00:00:00Z",
            }
            body = {"version": "4", "status": "firing", "receiver": "demo", "alerts": [alert]}
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{api_url}/webhook", data=json.dumps(body), timeout=5, headers=headers)

    def stop(self) -> None:
        self._stop.set()
        self.healthy.shutdown()
        self.flaky.shutdown()
