"""The original's load test: 10,000 alerts at 100 alerts/s through ``POST /webhook`` (10
alerts a request, 10 requests a second, open loop), to one webhook target on the sink, with
the fleet an operator runs (a ``-Q high`` pool and a general pool).

Received-to-delivered latency: received is the job's ``submitted_at`` in tracking (stamped by
the API when it accepted the alert), delivered the sink's first 2xx arrival; one machine
clock. Also the delivery rate, DLQ rows, duplicates at the sink, and the resident memory of
the worker and API process trees, sampled every second (flat: no more than 10 % growth from
10 % to 100 % of the run). Beside it, the reference: the same paced load sent with
``apply_async`` to bare Celery, send-to-sink latency. ``--quick`` sends 2,000 alerts.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.processes import BenchTimeout
from bench.product import Product, webhook_target
from bench.reference_app import TASK, create_reference_app
from bench.rss import RssSampler
from bench.scenarios.common import by_priority, latencies, start_reference_worker, wait_delivered, wait_keys
from bench.services import dlq_database, dlq_rows
from bench.stats import goal, summary_ms
from bench.traffic import job_priorities, paced

NAME = "load"
ALERTS_PER_REQUEST = 10
REQUESTS_PER_S = 10.0
GOAL_P50_MS = 5.0
GOAL_P99_MS = 12.0
DRAIN_TIMEOUT_S = 120.0
# The fleet as shipped (deploy files, ``make run``): gevent pools of 100 and 50 slots; the
# reference is bare Celery with as many slots on the same pool.
POOL = "gevent"
GENERAL_SLOTS = 100
HIGH_SLOTS = 50
# The reference run beside it is shorter: its latency distribution settles within seconds.
REFERENCE_ALERTS = 3000


def _reference(env: Env, options: Options, count: int) -> dict[str, Any]:
    """The same paced load (10 messages every 0.1 s) sent with ``apply_async`` straight to
    the reference app (bare Celery, our broker options, as many processes as our two pools);
    latency from the send to the sink."""
    slots = GENERAL_SLOTS + HIGH_SLOTS
    worker = start_reference_worker(env, "tuned", slots, name="reference", pool=POOL)
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
        for tick in range(count // ALERTS_PER_REQUEST):
            delay = start + tick / REQUESTS_PER_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for message in source.job_messages(ALERTS_PER_REQUEST, "sink"):
                sent_at[message["job_id"]] = time.time()
                task.apply_async(kwargs={"url": url, "message": message}, queue=message["priority"])
        delivered = wait_keys(env, sent_at, DRAIN_TIMEOUT_S, "reference deliveries")
    finally:
        app.close()
        env.supervisor.stop(worker, timeout_s=5)
    latency = summary_ms([delivered[j] - t for j, t in sent_at.items() if j in delivered])
    return {
        "what": f"bare Celery (-P {POOL} -c {slots}), apply_async from the harness, send -> sink",
        "jobs": len(sent_at),
        "delivered": sum(1 for j in sent_at if j in delivered),
        "latency": latency,
    }


def run(options: Options) -> dict[str, Any]:
    total = 2000 if options.quick else 10_000
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
        url = f"{product.api_url}/webhook"

        # Warm-up: every pool process builds its clients on its first job; not measured.
        warm = job_priorities(paced(url, source.bodies(10, ALERTS_PER_REQUEST), REQUESTS_PER_S))
        wait_delivered(env, len(warm), 60, "warm-up deliveries", [high, general])
        env.sink.reset()

        bodies = source.bodies(total // ALERTS_PER_REQUEST, ALERTS_PER_REQUEST)
        trees = {"worker_high": high.pid, "worker_general": general.pid, "api": api.pid}
        drained = True
        with RssSampler(trees, interval_s=1.0) as rss:
            sent = paced(url, bodies, REQUESTS_PER_S)
            jobs = job_priorities(sent)
            try:
                wait_delivered(env, len(jobs), DRAIN_TIMEOUT_S, "load test deliveries", [high, general])
            except BenchTimeout:
                drained = False
        received, delivered, latency = latencies(product, env, jobs)
        stages = product.tracking(list(jobs), "submitted_at", "started_at", "completed_at")
        arrivals = Counter(key for _, key, _, status in env.sink.records() if 200 <= status < 300)
        dead = dlq_rows(database_url)
        for proc in (high, general, api):
            env.supervisor.stop(proc, timeout_s=10)
        env.redis.flush()
        env.sink.reset()
        reference = _reference(env, options, min(total, REFERENCE_ALERTS))

    wait_s = [float(r[1]) - float(r[0]) for r in stages.values() if r[0] and r[1]]
    to_sink_s = [delivered[j] - float(r[1]) for j, r in stages.items() if r[1] and j in delivered]
    after_sink_s = [float(r[2]) - delivered[j] for j, r in stages.items() if r[2] and j in delivered]
    sends = sorted(s.started for s in sent)
    accepted = len(jobs)
    delivered_jobs = sum(1 for j in jobs if j in delivered)
    overall = summary_ms(list(latency.values()))
    worker_flat = all(
        rss_tree["flat"] for name, rss_tree in rss.summary().items() if name.startswith("worker")
    )
    memory = rss.summary()
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "alerts": total,
            "alerts_per_request": ALERTS_PER_REQUEST,
            "requests_per_s": REQUESTS_PER_S,
            "fleet": f"-P {POOL}: -Q high -c {HIGH_SLOTS} and -Q high,medium,low -c {GENERAL_SLOTS}; API gunicorn -w 2",
            "mix": "2/10 critical (high), 6/10 warning (medium), 2/10 info (low)",
        },
        "requests": {
            "sent": len(sent),
            "failed": sum(1 for s in sent if s.status != 202),
            "achieved_alerts_per_s": round(total / (sends[-1] - sends[0]) * (len(sends) - 1) / len(sends), 1)
            if len(sends) > 1
            else None,
            "latency": {k: v for k, v in summary_ms([s.latency_s for s in sent]).items() if k != "cdf_ms"},
            "lateness_p99_ms": round(
                sorted((s.started - s.scheduled) * 1000 for s in sent)[int(len(sent) * 0.99) - 1], 2
            )
            if sent
            else None,
        },
        "accepted": accepted,
        "delivered": delivered_jobs,
        "delivered_pct": round(100 * delivered_jobs / accepted, 3) if accepted else 0.0,
        "drained_in_time": drained,
        "duplicate_deliveries": sum(n - 1 for n in arrivals.values() if n > 1),
        "dlq_rows": dead,
        "latency": overall,
        "reference": reference,
        "latency_by_priority": by_priority(latency, jobs),
        "stages": {
            "queue_wait (submitted -> started)": _brief(wait_s),
            "attempt (started -> at the sink)": _brief(to_sink_s),
            "settle (at the sink -> completed)": _brief(after_sink_s),
        },
        "rss": memory,
        "worker_rss_flat": worker_flat,
        "received_tracked": len(received),
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
            f"{delivered_jobs}/{accepted} delivered, p50 {overall.get('p50_ms')} ms, "
            f"p95 {overall.get('p95_ms')} ms, p99 {overall.get('p99_ms')} ms, DLQ {dead}, "
            f"worker RSS flat: {worker_flat}; bare Celery p50/p99 {reference['latency'].get('p50_ms')}/"
            f"{reference['latency'].get('p99_ms')} ms"
        ),
    }


def _brief(values: list[float]) -> dict[str, Any]:
    summary = summary_ms(values)
    return {k: summary[k] for k in ("count", "p50_ms", "p95_ms", "p99_ms") if k in summary}
