"""Clients of the API on loopback: an open-loop paced sender (a request is sent at its
scheduled time whether or not earlier ones have been answered) and a closed-loop sender with
a few concurrent clients. Both are bounded in count and in time."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit

REQUEST_TIMEOUT_S = 30.0


@dataclass
class Sent:
    scheduled: float  # time.time() the request was due
    started: float
    finished: float
    status: int
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> priority (new jobs only)
    duplicates: int = 0
    error: str | None = None

    @property
    def latency_s(self) -> float:
        return self.finished - self.started


def post(url: str, body: bytes, scheduled: float | None = None) -> Sent:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"benchmarks send only to loopback, not {host}")
    started = time.time()
    conn = http.client.HTTPConnection(host, parts.port or 80, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    except OSError as exc:
        return Sent(scheduled or started, started, time.time(), 0, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
    finished = time.time()
    sent = Sent(scheduled or started, started, finished, status)
    if status == 202:
        for job in json.loads(raw).get("jobs", []):
            if job.get("duplicate"):
                sent.duplicates += 1
            else:
                sent.jobs[job["id"]] = job["priority"]
    else:
        sent.error = raw[:300].decode(errors="replace")
    return sent


def paced(url: str, bodies: list[bytes], rate_per_s: float, pool: int = 16) -> list[Sent]:
    """Send ``bodies`` at ``rate_per_s`` requests a second from a pool of threads; a request
    late because the pool is busy is sent as soon as a thread frees up."""
    interval = 1.0 / rate_per_s
    futures: list[Future[Sent]] = []
    with ThreadPoolExecutor(max_workers=pool, thread_name_prefix="paced") as executor:
        start_mono = time.monotonic() + 0.05
        start_wall = time.time() + 0.05
        for i, body in enumerate(bodies):
            due = start_mono + i * interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(executor.submit(post, url, body, start_wall + i * interval))
        wait(futures, timeout=REQUEST_TIMEOUT_S * 2)
    return [f.result() for f in futures if f.done()]


def concurrent(url: str, bodies: list[bytes], clients: int) -> tuple[list[Sent], float]:
    """Closed loop: ``clients`` threads each send the next body as soon as the last is
    answered. Returns the requests and the wall time from the first send to the last answer."""
    todo: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        todo.put(body)
    results: list[Sent] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max(60.0, len(bodies) * 2.0)

    def client() -> None:
        while time.monotonic() < deadline:
            try:
                body = todo.get_nowait()
            except queue.Empty:
                return
            sent = post(url, body)
            with lock:
                results.append(sent)

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(clients)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic()))
    return results, time.time() - started


def job_priorities(sent: list[Sent]) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in sent:
        out.update(s.jobs)
    return out
