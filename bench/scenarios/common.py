"""Steps several scenarios share: the reference worker, waiting for deliveries at the sink,
and received-to-delivered latencies read from job tracking and the sink."""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bench.context import Env
from bench.processes import BenchTimeout, Proc, wait_until
from bench.product import Product
from bench.reference_app import TASK, create_reference_app
from bench.sink import first_delivery
from bench.stats import summary_ms

T = TypeVar("T")


def start_reference_worker(
    env: Env,
    profile: str,
    concurrency: int,
    queues: str = "high,medium,low",
    name: str = "reference",
    extra_env: dict[str, str] | None = None,
    pool: str = "prefork",
) -> Proc:
    return env.supervisor.start(
        f"worker-{name}",
        [
            sys.executable, "-m", "celery", "-A", "bench.reference_app", "worker", "-Q", queues,
            "-c", str(concurrency), "-P", pool, "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ],
        env={"BENCH_BROKER_URL": env.redis.url, "BENCH_CELERY_PROFILE": profile, **(extra_env or {})},
    )  # fmt: skip


def enqueue_reference(
    env: Env, profile: str, url: str, messages: list[dict[str, Any]], queue: str
) -> dict[str, float]:
    """Send reference jobs by task name, as a plain ``apply_async`` loop; returns when each
    was sent (job id -> time.time())."""
    app = create_reference_app(env.redis.url, profile)
    sent: dict[str, float] = {}
    try:
        for message in messages:
            sent[message["job_id"]] = time.time()
            app.send_task(
                TASK, kwargs={"url": url, "message": message}, task_id=message["job_id"], queue=queue
            )
    finally:
        app.close()
    return sent


def wait_delivered(env: Env, count: int, timeout_s: float, what: str, watch: Sequence[Proc] = ()) -> None:
    def done() -> bool:
        for proc in watch:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        return env.sink.delivered() >= count

    wait_until(done, timeout_s, what, interval_s=0.2)


def latencies(
    product: Product, env: Env, jobs: dict[str, str]
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(received, delivered, latency) by job id: received is the API's ``submitted_at`` in
    tracking, delivered the sink's first 2xx arrival; the same machine clock."""
    received = product.submitted_at(list(jobs))
    delivered = first_delivery(env.sink.records())
    latency = {j: delivered[j] - received[j] for j in jobs if j in delivered and j in received}
    return received, delivered, latency


def by_priority(latency: dict[str, float], jobs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for priority in ("high", "medium", "low"):
        values = [v for j, v in latency.items() if jobs.get(j) == priority]
        if values:
            summary = summary_ms(values)
            summary.pop("cdf_ms", None)
            out[priority] = summary
    return out


def alternate(
    rounds: int, steps: Sequence[tuple[str, Callable[[], T]]], between: Callable[[], None]
) -> dict[str, list[T]]:
    """Run ``steps`` ``rounds`` times, reversing their order every other round (ABC, CBA,
    ...) so that a drift in the machine's other load weighs on each alike; ``between`` runs
    before every step (a clean Redis and sink)."""
    out: dict[str, list[T]] = {name: [] for name, _ in steps}
    for i in range(rounds):
        for name, step in steps if i % 2 == 0 else list(reversed(steps)):
            between()
            out[name].append(step())
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def wait_keys(
    env: Env, keys: Sequence[str] | dict[str, Any], timeout_s: float, what: str
) -> dict[str, float]:
    """Wait (bounded) until every key has a 2xx at the sink; the first arrivals found by
    then, whether or not all came."""
    wanted = set(keys)
    found: dict[str, float] = {}

    def done() -> bool:
        found.update(first_delivery(env.sink.records()))
        return wanted <= found.keys()

    with contextlib.suppress(BenchTimeout):
        wait_until(done, timeout_s, what, 0.25)
    return found
