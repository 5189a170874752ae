"""The original's load test: 10,000 alerts at 100 alerts/s through ``POST /webhook``, open
loop, to one webhook target on the sink, with the fleet an operator runs (a ``-Q high`` pool
and a general pool).

Two arrival shapes on the same fleet. **Even** (the goal's): one alert a request, a request
every 10 ms. **Grouped**: the same rate as Alertmanager's grouped notifications bring it, 10
alerts a request at 10 requests a second; the jobs of one request queue behind each other in
one worker process, so its latency is mostly that queue.

Latency is POST -> delivered: from the moment the client starts sending the request to the
sink's first 2xx arrival of the job; one machine clock. Also received -> delivered (received
is the job's ``submitted_at`` in tracking, stamped by the API) and where that time goes. Also
the delivery rate, DLQ rows, duplicates at the sink, and the resident memory of the worker
and API process trees, sampled every second (flat: no more than 10 % growth from 10 % to
100 % of the run). Beside each shape, the reference: the same paced load sent with
``apply_async`` to bare Celery, send -> sink. ``--quick`` sends 2,000 alerts (grouped 1,000).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.processes import BenchTimeout, Proc
from bench.product import Product, webhook_target
from bench.reference_app import TASK, create_reference_app
from bench.rss import RssSampler
from bench.scenarios.common import by_priority, latencies, start_reference_worker, wait_delivered, wait_keys
from bench.services import dlq_database, dlq_rows
from bench.stats import goal, summary_ms
from bench.traffic import Sent, job_priorities, paced

NAME = "load"
GOAL_P50_MS = 5.0
GOAL_P99_MS = 12.0
DRAIN_TIMEOUT_S = 120.0
# The fleet as shipped (deploy files, ``make run``): gevent pools of 100 and 50 slots; the
# reference is bare Celery with as many slots on the same pool.
POOL = "gevent"
GENERAL_SLOTS = 100
HIGH_SLOTS = 50
# The reference runs beside it are shorter: their latency distribution settles within seconds.
REFERENCE_ALERTS = 3000


@dataclass(frozen=True)
class Shape:
    name: str
    alerts_per_request: int
    requests_per_s: float
    full: int  # alerts sent
    quick: int  # alerts sent with --quick

    def alerts(self, quick: bool) -> int:
        return self.quick if quick else self.full


EVEN = Shape("even", 1, 100.0, full=10_000, quick=2000)
GROUPED = Shape("grouped", 10, 10.0, full=3000, quick=1000)


def _reference(env: Env, shape: Shape, count: int) -> dict[str, Any]:
    """The same paced load sent with ``apply_async`` straight to the reference app (bare
    Celery, our broker options, as many slots as our two pools); latency from the send to the
    sink."""
    slots = GENERAL_SLOTS + HIGH_SLOTS
    worker = start_reference_worker(env, "tuned", slots, name=f"reference-{shape.name}", pool=POOL)
    worker.wait_for_log("ready.", 60)
    app = create_reference_app(env.redis.url, "tuned")
    task = app.tasks[TASK]
    url = env.sink.url("fast")
    source = AlertSource()
    sent_at: dict[str, float] = {}
    try:
        warm = source.job_messages(20, "sink")
        for message in warm:
            task.apply_async(kwargs={"url": url, "message": message}, queue="medium")
        wait_delivered(env, len(warm), 60, "reference warm-up", [worker])
        env.sink.reset()
        start = time.monotonic()
        for tick in range(count // shape.alerts_per_request):
            delay = start + tick / shape.requests_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for message in source.job_messages(shape.alerts_per_request, "sink"):
                sent_at[message["job_id"]] = time.time()
                task.apply_async(kwargs={"url": url, "message": message}, queue=message["priority"])
        delivered = wait_keys(env, sent_at, DRAIN_TIMEOUT_S, "reference deliveries")
    finally:
        app.close()
        env.supervisor.stop(worker, timeout_s=5)
        env.redis.flush()
        env.sink.reset()
    latency = summary_ms([delivered[j] - t for j, t in sent_at.items() if j in delivered])
    return {
        "what": f"bare Celery (-P {POOL} -c {slots}), apply_async from the harness, send -> sink",
        "jobs": len(sent_at),
        "delivered": sum(1 for j in sent_at if j in delivered),
        "latency": latency,
    }


@dataclass
class _Pass:
    """One shape sent through the product: what was sent, what arrived, and when."""

    shape: Shape
    sent: list[Sent]
    jobs: dict[str, str]  # job id -> priority
    drained: bool
    posted: dict[str, float]  # job id -> the client's send of its request
    received: dict[str, float]
    delivered: dict[str, float]
    stages: dict[str, list[str | None]]
    arrivals: Counter[str]

    def latency(self) -> dict[str, float]:
        return {j: self.delivered[j] - self.posted[j] for j in self.jobs if j in self.delivered}

    def received_latency(self) -> dict[str, float]:
        return {
            j: self.delivered[j] - self.received[j]
            for j in self.jobs
            if j in self.delivered and j in self.received
        }


def _send(
    env: Env, product: Product, shape: Shape, count: int, source: AlertSource, watch: list[Proc]
) -> _Pass:
    url = f"{product.api_url}/webhook"
    bodies = source.bodies(count // shape.alerts_per_request, shape.alerts_per_request)
    sent = paced(url, bodies, shape.requests_per_s)
    jobs = job_priorities(sent)
    drained = True
    try:
        wait_delivered(env, len(jobs), DRAIN_TIMEOUT_S, f"load test deliveries ({shape.name})", watch)
    except BenchTimeout:
        drained = False
    received, delivered, _ = latencies(product, env, jobs)
    stages = product.tracking(list(jobs), "submitted_at", "started_at", "completed_at")
    arrivals = Counter(key for _, key, _, status in env.sink.records() if 200 <= status < 300)
    posted = {job: s.started for s in sent for job in s.jobs}
    env.sink.reset()
    return _Pass(shape, sent, jobs, drained, posted, received, delivered, stages, arrivals)


def _requests(sent: list[Sent], shape: Shape) -> dict[str, Any]:
    sends = sorted(s.started for s in sent)
    alerts = len(sent) * shape.alerts_per_request
    return {
        "sent": len(sent),
        "failed": sum(1 for s in sent if s.status != 202),
        "achieved_alerts_per_s": round(alerts / (sends[-1] - sends[0]) * (len(sends) - 1) / len(sends), 1)
        if len(sends) > 1
        else None,
        "latency": {k: v for k, v in summary_ms([s.latency_s for s in sent]).items() if k != "cdf_ms"},
        "lateness_p99_ms": round(
            sorted((s.started - s.scheduled) * 1000 for s in sent)[int(len(sent) * 0.99) - 1], 2
        )
        if sent
        else None,
    }


def _stages(run: _Pass) -> dict[str, Any]:
    rows, delivered = run.stages, run.delivered
    wait_s = [float(r[1]) - float(r[0]) for r in rows.values() if r[0] and r[1]]
    to_sink_s = [delivered[j] - float(r[1]) for j, r in rows.items() if r[1] and j in delivered]
    after_sink_s = [float(r[2]) - delivered[j] for j, r in rows.items() if r[2] and j in delivered]
    return {
        "post -> received (client send -> the API stamps the job)": _brief(
            [run.received[j] - run.posted[j] for j in run.jobs if j in run.received]
        ),
        "queue_wait (received -> started)": _brief(wait_s),
        "attempt (started -> at the sink)": _brief(to_sink_s),
        "settle (at the sink -> completed)": _brief(after_sink_s),
    }


def _setup(shape: Shape, count: int) -> dict[str, Any]:
    return {
        "alerts": count,
        "alerts_per_request": shape.alerts_per_request,
        "requests_per_s": shape.requests_per_s,
        "fleet": f"-P {POOL}: -Q high -c {HIGH_SLOTS} and -Q high,medium,low -c {GENERAL_SLOTS}; API gunicorn -w 2",
        "mix": "2/10 critical (high), 6/10 warning (medium), 2/10 info (low)",
    }


def run(options: Options) -> dict[str, Any]:
    total = EVEN.alerts(options.quick)
    grouped_total = GROUPED.alerts(options.quick)
    started = datetime.now(UTC)
    source = AlertSource()
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())
        product = Product(
            env.supervisor,
            env.run_dir,
            env.redis,
            database_url,
            [webhook_target("sink", env.sink.url("fast"))],
        )
        api = product.start_api(workers=2)
        high, general = product.start_fleet(GENERAL_SLOTS, HIGH_SLOTS, pool=POOL)

        # Warm-up: every pool process builds its clients on its first job; not measured.
        warm = job_priorities(paced(f"{product.api_url}/webhook", source.bodies(20, 1), EVEN.requests_per_s))
        wait_delivered(env, len(warm), 60, "warm-up deliveries", [high, general])
        env.sink.reset()

        trees = {"worker_high": high.pid, "worker_general": general.pid, "api": api.pid}
        with RssSampler(trees, interval_s=1.0) as rss:
            even = _send(env, product, EVEN, total, source, [high, general])
        grouped = _send(env, product, GROUPED, grouped_total, source, [high, general])
        dead = dlq_rows(database_url)
        for proc in (high, general, api):
            env.supervisor.stop(proc, timeout_s=10)
        env.redis.flush()
        env.sink.reset()
        reference = _reference(env, EVEN, min(total, REFERENCE_ALERTS))
        grouped_reference = _reference(env, GROUPED, min(grouped_total, REFERENCE_ALERTS))

    accepted = len(even.jobs)
    delivered_jobs = sum(1 for j in even.jobs if j in even.delivered)
    overall = summary_ms(list(even.latency().values()))
    received = summary_ms(list(even.received_latency().values()))
    received.pop("cdf_ms", None)
    grouped_latency = summary_ms(list(grouped.latency().values()))
    grouped_delivered = sum(1 for j in grouped.jobs if j in grouped.delivered)
    memory = rss.summary()
    worker_flat = all(tree["flat"] for name, tree in memory.items() if name.startswith("worker"))
    duplicates = sum(n - 1 for run in (even, grouped) for n in run.arrivals.values() if n > 1)
    return {
        "started": started,
        "machine": facts,
        "setup": _setup(EVEN, total),
        "requests": _requests(even.sent, EVEN),
        "accepted": accepted,
        "delivered": delivered_jobs,
        "delivered_pct": round(100 * delivered_jobs / accepted, 3) if accepted else 0.0,
        "drained_in_time": even.drained and grouped.drained,
        "duplicate_deliveries": duplicates,
        "dlq_rows": dead,
        "latency": overall,
        "received_latency": received,
        "reference": reference,
        "latency_by_priority": by_priority(even.latency(), even.jobs),
        "stages": _stages(even),
        "grouped": {
            "setup": _setup(GROUPED, grouped_total),
            "requests": _requests(grouped.sent, GROUPED),
            "accepted": len(grouped.jobs),
            "delivered": grouped_delivered,
            "latency": grouped_latency,
            "reference": grouped_reference,
            "latency_by_priority": by_priority(grouped.latency(), grouped.jobs),
            "stages": _stages(grouped),
        },
        "rss": memory,
        "worker_rss_flat": worker_flat,
        "received_tracked": len(even.received),
        "goals": {
            "delivered_pct": goal(
                round(100 * delivered_jobs / accepted, 3) if accepted else 0.0, 100.0, True
            ),
            "p50_ms": goal(overall.get("p50_ms"), GOAL_P50_MS, False),
            "p99_ms": goal(overall.get("p99_ms"), GOAL_P99_MS, False),
            "dlq_rows": goal(float(dead), 0.0, False),
            "worker_rss_flat": {"measured": worker_flat, "target": True, "met": worker_flat},
        },
        "headline": (
            f"{delivered_jobs}/{accepted} delivered, POST -> delivered p50 {overall.get('p50_ms')} ms, "
            f"p95 {overall.get('p95_ms')} ms, p99 {overall.get('p99_ms')} ms (bare Celery "
            f"{reference['latency'].get('p50_ms')}/{reference['latency'].get('p99_ms')} ms), DLQ {dead}, "
            f"worker RSS flat: {worker_flat}; grouped 10 a request: p50/p99 {grouped_latency.get('p50_ms')}/"
            f"{grouped_latency.get('p99_ms')} ms (bare Celery {grouped_reference['latency'].get('p50_ms')}/"
            f"{grouped_reference['latency'].get('p99_ms')} ms)"
        ),
    }


def _brief(values: list[float]) -> dict[str, Any]:
    summary = summary_ms(values)
    return {k: summary[k] for k in ("count", "p50_ms", "p95_ms", "p99_ms") if k in summary}
