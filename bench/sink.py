"""The loopback sink that stands in for every target: a small asyncio HTTP/1.1 server in its
own process (so it shares no GIL with the harness or the workers).

Routes on the main port: ``/fast`` answers 200 at once, ``/slow`` after ``--slow-s``,
``/slow<ms>`` (``/slow200``) after that many milliseconds. The
second, "outage" port answers 200 while up; told ``down`` it stops listening and drops its
connections (connection refused), or in ``503`` mode answers 503. Every data request is
recorded with its arrival time (``time.time()``, the machine clock the API also stamps jobs
with) and its ``Idempotency-Key``. Control, on the main port: ``GET /_stats``,
``GET /_records?since=N``, ``POST /_reset``, ``POST /_outage?state=down|up&mode=refuse|503``.

Run: ``python -m bench.sink --ports-file FILE`` (it writes ``{"port", "outage_port"}`` there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_RECORDS = 2_000_000
_OK = b'{"status":"success"}'


class Sink:
    def __init__(self, slow_s: float) -> None:
        self.slow_s = slow_s
        # (arrival time, idempotency key, route, status answered)
        self.records: list[tuple[float, str, str, int]] = []
        self.delivered: set[str] = set()  # keys answered 2xx (kept as they come: stats stay cheap)
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.outage_up = True
        self.outage_mode = "refuse"
        self.outage_server: asyncio.Server | None = None
        self.outage_port = 0
        self.outage_conns: set[asyncio.Transport] = set()

    def record(self, key: str, route: str, status: int) -> None:
        if len(self.records) < MAX_RECORDS:
            self.records.append((time.time(), key, route, status))
            if 200 <= status < 300:
                self.delivered.add(key)

    def enter(self, route: str) -> None:
        n = self.in_flight.get(route, 0) + 1
        self.in_flight[route] = n
        if n > self.max_in_flight.get(route, 0):
            self.max_in_flight[route] = n

    def leave(self, route: str) -> None:
        self.in_flight[route] -= 1

    def stats(self) -> dict[str, Any]:
        return {
            "count": len(self.records),
            "delivered": len(self.delivered),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "outage_up": self.outage_up,
        }

    async def set_outage(self, up: bool, mode: str) -> None:
        self.outage_mode = mode
        self.outage_up = up
        if mode != "refuse":
            return
        if not up and self.outage_server is not None:
            self.outage_server.close()
            for transport in list(self.outage_conns):
                transport.abort()
            await self.outage_server.wait_closed()
            self.outage_server = None
        elif up and self.outage_server is None:
            self.outage_server = await serve(self, self.outage_port, outage=True)


class HttpProtocol(asyncio.Protocol):
    def __init__(self, sink: Sink, outage: bool) -> None:
        self.sink = sink
        self.outage = outage
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.outage:
            self.sink.outage_conns.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.outage and self.transport is not None:
            self.sink.outage_conns.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            method, target = lines[0].split(" ", 2)[:2]
            self.handle(method, target, headers)

    def reply(self, status: int, body: bytes = _OK, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "OK")
        connection = "Connection: close\r\n" if close else ""
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n"
        )
        self.transport.write(head.encode() + body)
        if close:
            self.transport.close()

    def handle(self, method: str, target: str, headers: dict[str, str]) -> None:
        sink = self.sink
        parts = urlsplit(target)
        close = headers.get("connection", "").lower() == "close"
        if parts.path.startswith("/_") and not self.outage:
            self.control(method, parts.path, parse_qs(parts.query), close)
            return
        key = headers.get("idempotency-key", "")
        if self.outage:
            status = 200 if sink.outage_up else 503
            sink.record(key, "outage", status)
            self.reply(status, close=close)
            return
        route = parts.path.strip("/") or "fast"
        delay_s = _delay_s(route, sink.slow_s)
        if delay_s is not None:
            sink.record(key, route, 200)
            sink.enter(route)

            def later() -> None:
                sink.leave(route)
                self.reply(200, close=close)

            asyncio.get_running_loop().call_later(delay_s, later)
            return
        sink.record(key, route, 200)
        self.reply(200, close=close)

    def control(self, method: str, path: str, query: dict[str, list[str]], close: bool) -> None:
        sink = self.sink
        if path == "/_stats":
            self.reply(200, json.dumps(sink.stats()).encode(), close)
        elif path == "/_records":
            since = int(query.get("since", ["0"])[0])
            self.reply(200, json.dumps(sink.records[since:]).encode(), close)
        elif path == "/_reset" and method == "POST":
            sink.records.clear()
            sink.delivered.clear()
            sink.max_in_flight.clear()
            self.reply(200, b"{}", close)
        elif path == "/_outage" and method == "POST":
            up = query.get("state", ["up"])[0] == "up"
            mode = query.get("mode", ["refuse"])[0]
            task = asyncio.get_running_loop().create_task(sink.set_outage(up, mode))
            task.add_done_callback(lambda _: self.reply(200, b"{}", close))
        else:
            self.reply(404, b"{}", close)


def _delay_s(route: str, slow_s: float) -> float | None:
    """How long ``route`` waits before it answers: None for an answer at once."""
    if route == "slow":
        return slow_s
    if route.startswith("slow") and route[4:].isdigit():
        return int(route[4:]) / 1000
    return None


async def serve(sink: Sink, port: int, outage: bool = False) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(sink, outage), "127.0.0.1", port, reuse_address=True, backlog=1024
    )


async def main(ports_file: Path, slow_s: float) -> None:
    sink = Sink(slow_s)
    main_server = await serve(sink, 0)
    sink.outage_server = await serve(sink, 0, outage=True)
    port = main_server.sockets[0].getsockname()[1]
    sink.outage_port = sink.outage_server.sockets[0].getsockname()[1]
    tmp = ports_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": port, "outage_port": sink.outage_port, "pid": os.getpid()}))
    tmp.rename(ports_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class SinkClient:
    """The harness's view of a running sink (control requests over loopback)."""

    def __init__(self, port: int, outage_port: int, pid: int = 0) -> None:
        self.port = port
        self.outage_port = outage_port
        self.pid = pid

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}"

    @property
    def outage_url(self) -> str:
        return f"http://127.0.0.1:{self.outage_port}/hook"

    def _call(self, method: str, path: str, timeout_s: float = 30.0) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_stats"))

    def records(self) -> list[tuple[float, str, str, int]]:
        return [(float(t), str(k), str(r), int(s)) for t, k, r, s in self._call("GET", "/_records")]

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def outage(self, up: bool, mode: str = "refuse") -> None:
        self._call("POST", f"/_outage?state={'up' if up else 'down'}&mode={mode}")

    def delivered(self) -> int:
        return int(self.stats()["delivered"])


def first_delivery(records: list[tuple[float, str, str, int]]) -> dict[str, float]:
    """Each key's first 2xx arrival time."""
    first: dict[str, float] = {}
    for at, key, _, status in records:
        if 200 <= status < 300 and key not in first:
            first[key] = at
    return first


def routes(records: list[tuple[float, str, str, int]], keep: Callable[[str], bool]) -> list[float]:
    return [at for at, _, route, status in records if keep(route) and 200 <= status < 300]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__)
    parser.add_argument("--ports-file", type=Path, required=True)
    parser.add_argument("--slow-s", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.ports_file, args.slow_s))
