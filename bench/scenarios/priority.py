"""Priority isolation: a backlog of ``low`` jobs to a target that answers in 1 s (enough to
keep every general worker slot busy for the whole test), then ``high`` alerts at 10/s to a
healthy target. Reported: the high jobs' received-to-delivered latency.

Ours runs as shipped (docs/operations.md, deploy/compose.yaml): a dedicated ``-Q high`` pool
beside a general ``-Q high,medium,low`` pool, gevent ``-c 50`` and ``-c 100``; alerts enter
through ``POST /webhook`` and are routed by filter (info -> the slow target, critical -> the
pager). The contrast, in the same run: the reference app with plain Celery defaults (one
worker on ``-Q high,medium,low`` with as many gevent slots as our two pools together, prefetch
multiplier 4, round-robin queue order, early acks), fed with ``apply_async``; its latency
runs from the send.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.processes import wait_until
from bench.product import Product, webhook_target
from bench.reference_app import TASK, create_reference_app
from bench.scenarios.common import latencies, start_reference_worker, wait_keys
from bench.services import dlq_database
from bench.stats import goal, summary_ms
from bench.traffic import concurrent, job_priorities, paced

NAME = "priority"
HIGH_PER_S = 10.0
# The fleet as shipped: gevent pools of 100 (general) and 50 (high) slots.
POOL = "gevent"
GENERAL_SLOTS = 100
HIGH_SLOTS = 50
GOAL_P99_MS = 15.0
SPEC_P99_MS = 100.0
# The low backlog outlasts the high phase by this long at the slow target's pace (1 job a
# second a slot), so every slot stays busy throughout.
BACKLOG_MARGIN_S = 15


def _wait_slots_busy(env: Env, slots: int) -> None:
    wait_until(
        lambda: env.sink.stats()["in_flight"].get("slow", 0) >= slots,
        60,
        f"{slots} low jobs in flight at the slow target",
        0.05,
    )


def _ours(env: Env, options: Options, database_url: str, phase_s: float) -> dict[str, Any]:
    general = GENERAL_SLOTS
    source = AlertSource()
    product = Product(
        env.supervisor,
        env.run_dir,
        env.redis,
        database_url,
        [
            webhook_target("slow-target", env.sink.url("slow"), filter={"severity": ["info"]}),
            webhook_target("pager", env.sink.url("fast"), filter={"severity": ["critical"]}),
        ],
    )
    product.start_api(workers=2)
    pools = product.start_fleet(general, HIGH_SLOTS, pool=POOL)
    url = f"{product.api_url}/webhook"
    warm = job_priorities(paced(url, source.bodies(10, 1, "critical"), HIGH_PER_S))
    wait_until(lambda: env.sink.delivered() >= len(warm), 60, "warm-up deliveries", 0.1)
    env.sink.reset()

    backlog = int(general * (phase_s + BACKLOG_MARGIN_S))
    low_sent, _ = concurrent(url, source.bodies(max(1, backlog // 50), 50, "info"), clients=1)
    low_jobs = job_priorities(low_sent)
    _wait_slots_busy(env, general)
    high_sent = paced(url, source.bodies(int(phase_s * HIGH_PER_S), 1, "critical"), HIGH_PER_S)
    high_jobs = job_priorities(high_sent)
    stats = env.sink.stats()
    wait_keys(env, high_jobs, 60, "high deliveries")
    _, delivered, latency = latencies(product, env, high_jobs)
    low_left = product.queue_depths()["low"]
    for proc in pools:
        env.supervisor.stop(proc, timeout_s=5)
    return {
        "fleet": f"-P {POOL}: -Q high -c {HIGH_SLOTS} + -Q high,medium,low -c {general}",
        "low_backlog": len(low_jobs),
        "high_sent": len(high_jobs),
        "high_delivered": sum(1 for j in high_jobs if j in delivered),
        "slow_in_flight_at_end_of_high_phase": stats["in_flight"].get("slow", 0),
        "low_jobs_still_queued_after": low_left,
        "latency": summary_ms(list(latency.values())),
        "latency_from": "the API's submitted_at (tracking) to the sink",
    }


def _naive(env: Env, options: Options, phase_s: float) -> dict[str, Any]:
    processes = GENERAL_SLOTS + HIGH_SLOTS
    source = AlertSource()
    worker = start_reference_worker(env, "naive", processes, name="naive", pool=POOL)
    worker.wait_for_log("ready.", 60)
    app = create_reference_app(env.redis.url, "naive")
    task = app.tasks[TASK]
    try:
        for message in source.job_messages(int(processes * (phase_s + BACKLOG_MARGIN_S)), "slow", "info"):
            task.apply_async(kwargs={"url": env.sink.url("slow"), "message": message}, queue="low")
        _wait_slots_busy(env, processes)
        sent_at: dict[str, float] = {}
        messages = source.job_messages(int(phase_s * HIGH_PER_S), "pager", "critical")
        start = time.monotonic()
        for i, message in enumerate(messages):
            delay = start + i / HIGH_PER_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent_at[message["job_id"]] = time.time()
            task.apply_async(kwargs={"url": env.sink.url("fast"), "message": message}, queue="high")
        stats = env.sink.stats()
        delivered = wait_keys(env, sent_at, 120, "naive high deliveries")
    finally:
        app.close()
        env.supervisor.stop(worker, timeout_s=5)
    latency = [delivered[j] - t for j, t in sent_at.items() if j in delivered]
    return {
        "fleet": f"one worker, -Q high,medium,low -P {POOL} -c {processes}, Celery defaults",
        "high_sent": len(sent_at),
        "high_delivered": len(latency),
        "slow_in_flight_at_end_of_high_phase": stats["in_flight"].get("slow", 0),
        "latency": summary_ms(latency),
        "latency_from": "apply_async to the sink",
    }


def run(options: Options) -> dict[str, Any]:
    phase_s = 10.0 if options.quick else 20.0
    started = datetime.now(UTC)
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())
        ours = _ours(env, options, database_url, phase_s)
        env.redis.flush()
        env.sink.reset()
        naive = _naive(env, options, phase_s)
    p99 = ours["latency"].get("p99_ms")
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "high_phase_s": phase_s,
            "high_per_s": HIGH_PER_S,
            "slow_target_s": 1.0,
        },
        "ours": ours,
        "naive_celery_defaults": naive,
        "goals": {
            "high_p99_ms": goal(p99, GOAL_P99_MS, False),
            "high_p99_ms_spec": goal(p99, SPEC_P99_MS, False),
            "all_high_delivered": {
                "measured": ours["high_delivered"],
                "target": ours["high_sent"],
                "met": ours["high_delivered"] == ours["high_sent"],
            },
        },
        "headline": (
            f"high p50/p99: ours {ours['latency'].get('p50_ms')}/{p99} ms, "
            f"naive Celery {naive['latency'].get('p50_ms')}/{naive['latency'].get('p99_ms')} ms"
        ),
    }
