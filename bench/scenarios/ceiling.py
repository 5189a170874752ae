"""Ceiling: the same machine's bare Celery rate beside the full product's.

Reference: N jobs enqueued upfront on the private Redis, then a minimal Celery worker (our
broker options, the same concurrency) whose task only POSTs the alert to the sink. Product:
the same N alerts through ``POST /webhook`` (parse, route, priority, dedup, tracking,
enqueue), then ``celery -A workers.main worker`` (breaker, tracking, publish) to the same
sink. Rate = deliveries from the first to the last arrival at the sink. Redis round trips
and connections are counted inside the processes (``bench/instrument``). A what-if pass runs
the product without task events, to price them. Both sides run twice: on prefork ``-c`` (the
CPU comparison: bare Celery's gevent pool pauses whenever its pool is full, see the storm
scenario) and on the delivery pool as shipped, gevent ``-c 100``, where the round-trip goal
is held. With ``--profile`` a last pass samples the reference worker, the product worker and
the API with py-spy (its rates are not reported).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.counting import Counting, instrument_env
from bench.processes import Proc, cpu_delta_s, tree_cpu_s, wait_until
from bench.product import Product, webhook_target
from bench.profiling import PySpy, analyse
from bench.scenarios.common import (
    alternate,
    enqueue_reference,
    median,
    start_reference_worker,
    wait_delivered,
)
from bench.services import command_delta, dlq_database, dlq_rows
from bench.sink import first_delivery
from bench.stats import goal, rate_per_s
from bench.traffic import concurrent, job_priorities
from bench.unit_costs import measure as measure_round_trips

NAME = "ceiling"
GOAL_RATIO = 0.8
# Redis round trips a job costs the worker (consumer and pool processes together); bare
# Celery's is 3 (BRPOP, the unacked record, the ack).
GOAL_ROUND_TRIPS = 4.0
# The delivery pool as shipped (deploy/kubernetes/worker.yaml, make run).
SHIPPED_POOL = "gevent"
SHIPPED_CONCURRENCY = 100
ALERTS_PER_REQUEST = 100
API_WORKERS = 2


@dataclass(frozen=True)
class Pass:
    """How one pass runs: counted (the measured passes), profiled, or without task events."""

    count: int
    concurrency: int
    counted: bool = True
    profile: bool = False
    task_events: bool = True
    pool: str = "prefork"


def _drain(
    env: Env, worker: Proc, count: int, what: str, on_first: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Wait for ``count`` deliveries; the rate and the CPU each process tree spent on them.
    ``on_first`` runs at the first delivery (a profiler then sees no start-up)."""
    wait_until(lambda: env.sink.delivered() > 0 or None, 120, f"{what}: first delivery", 0.02)
    if on_first is not None:
        on_first()
    trees = {"worker": worker.pid, "redis": env.redis.proc.pid, "sink": env.sink.pid}
    cpu_before = {name: tree_cpu_s(pid) for name, pid in trees.items()}
    started = time.time()
    wait_delivered(env, count, max(300.0, count / 20), what, [worker])
    elapsed = time.time() - started
    cpu_after = {name: tree_cpu_s(pid) for name, pid in trees.items()}
    times = sorted(first_delivery(env.sink.records()).values())
    return {
        "jobs": count,
        "delivered": len(times),
        "rate_per_s": round(rate_per_s(times), 1),
        "span_s": round(times[-1] - times[0], 2),
        # CPU from the first delivery to the last, over the jobs: a slight underestimate.
        "cpu_ms_per_job": {
            name: round(1000 * cpu_delta_s(cpu_before[name], cpu_after[name]) / count, 3) for name in trees
        },
        "cpu_window_s": round(elapsed, 2),
    }


class _Spies:
    def __init__(self, env: Env, enabled: bool) -> None:
        self._env = env
        self._enabled = enabled
        self._running: list[PySpy] = []

    def start(self, name: str, pid: int) -> None:
        if self._enabled:
            self._running.append(PySpy(self._env.supervisor, name, pid, self.path(name)))

    def path(self, name: str) -> Path:
        return self._env.run_dir / f"profile-{name}.txt"

    def stop(self) -> None:
        while self._running:
            self._running.pop().stop()


def _net_bytes(env: Env) -> tuple[int, int]:
    stats = env.redis.client.info("stats")
    return int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"])


def _bytes_per_job(before: tuple[int, int], after: tuple[int, int], jobs: int) -> dict[str, float]:
    """Bytes Redis read and wrote per job (every client's, INFO's counters; the bench's own
    polling is a few hundred bytes a second)."""
    return {"in": round((after[0] - before[0]) / jobs), "out": round((after[1] - before[1]) / jobs)}


def _round_trips(counted: dict[str, Any] | None) -> float | None:
    if not counted:
        return None
    return round(sum(float(c.get("redis_round_trips_per_job") or 0) for c in counted.values()), 2)


def _reference(env: Env, run: Pass) -> dict[str, Any]:
    messages = AlertSource().job_messages(run.count, "sink", "warning")
    enqueue_reference(env, "tuned", env.sink.url("fast"), messages, "medium")
    before = env.redis.command_counts()
    net_before = _net_bytes(env)
    counting = Counting(env.run_dir, "reference")
    worker = start_reference_worker(
        env, "tuned", run.concurrency, extra_env=counting.env() if run.counted else None, pool=run.pool
    )
    spies = _Spies(env, run.profile)
    try:
        figures = _drain(
            env, worker, run.count, "reference run", lambda: spies.start("reference", worker.pid)
        )
        if run.counted:
            figures["counted"] = counting.read(worker.pid, run.count)
    finally:
        spies.stop()
        env.supervisor.stop(worker)
    figures["redis_commands"] = command_delta(before, env.redis.command_counts(), run.count)
    figures["redis_bytes_per_job"] = _bytes_per_job(net_before, _net_bytes(env), run.count)
    return figures


def _ingest(env: Env, product: Product, run: Pass, counting: Counting) -> dict[str, Any]:
    assert product.api is not None
    bodies = AlertSource().bodies(run.count // ALERTS_PER_REQUEST, ALERTS_PER_REQUEST, "warning")
    before = env.redis.command_counts()
    net_before = _net_bytes(env)
    cpu_before = tree_cpu_s(product.api.pid)
    redis_before = tree_cpu_s(env.redis.proc.pid)
    spies = _Spies(env, run.profile)
    spies.start("api", product.api.pid)
    try:
        sent, elapsed = concurrent(f"{product.api_url}/webhook", bodies, clients=API_WORKERS)
    finally:
        spies.stop()
    jobs = job_priorities(sent)
    if len(jobs) != run.count:
        errors = [s.error for s in sent if s.error][:3]
        raise RuntimeError(f"the API accepted {len(jobs)} of {run.count} alerts: {errors}")
    figures: dict[str, Any] = {
        "alerts": run.count,
        "alerts_per_s": round(run.count / elapsed, 1),
        "cpu_ms_per_alert_api": round(
            1000 * cpu_delta_s(cpu_before, tree_cpu_s(product.api.pid)) / run.count, 3
        ),
        "cpu_ms_per_alert_redis": round(
            1000 * cpu_delta_s(redis_before, tree_cpu_s(env.redis.proc.pid)) / run.count, 3
        ),
        "redis_commands": command_delta(before, env.redis.command_counts(), run.count),
        "redis_bytes_per_alert": _bytes_per_job(net_before, _net_bytes(env), run.count),
    }
    if run.counted:
        figures["counted"] = counting.read(product.api.pid, run.count)
    return figures


def _product(env: Env, database_url: str, run: Pass) -> dict[str, Any]:
    product = Product(
        env.supervisor, env.run_dir, env.redis, database_url, [webhook_target("sink", env.sink.url("fast"))]
    )
    api_counting = Counting(env.run_dir, "api")
    api = product.start_api(
        API_WORKERS, instrument_env(api_counting.dir if run.counted else None, run.task_events)
    )
    try:
        ingest = _ingest(env, product, run, api_counting)
    finally:
        env.supervisor.stop(api)
    before = env.redis.command_counts()
    net_before = _net_bytes(env)
    counting = Counting(env.run_dir, "worker")
    worker = product.start_worker(
        "general",
        "high,medium,low",
        run.concurrency,
        instrument_env(counting.dir if run.counted else None, run.task_events),
        wait_ready=False,
        pool=run.pool,
    )
    spies = _Spies(env, run.profile)
    try:
        figures = _drain(env, worker, run.count, "product run", lambda: spies.start("worker", worker.pid))
        if run.counted:
            figures["counted"] = counting.read(worker.pid, run.count)
    finally:
        spies.stop()
        env.supervisor.stop(worker)
    figures["redis_commands"] = command_delta(before, env.redis.command_counts(), run.count)
    figures["redis_bytes_per_job"] = _bytes_per_job(net_before, _net_bytes(env), run.count)
    figures["ingest"] = ingest
    figures["dlq_rows"] = dlq_rows(database_url)
    return figures


def _profile(env: Env, options: Options, database_url: str, count: int) -> dict[str, Any]:
    """A separate, uncounted pass under py-spy; longer, so the steady state outweighs
    py-spy's attach time."""
    run = Pass(count * 2, options.concurrency, counted=False, profile=True)
    for step in (_reference, lambda e, r: _product(e, database_url, r)):
        env.redis.flush()
        env.sink.reset()
        step(env, run)
    out: dict[str, Any] = {}
    options.results_dir.mkdir(parents=True, exist_ok=True)
    for name in ("reference", "worker", "api"):
        raw = env.run_dir / f"profile-{name}.txt"
        if raw.exists():
            # The collapsed stacks (flamegraph.pl or speedscope read them), compressed: megabytes.
            (options.results_dir / f"{raw.name}.gz").write_bytes(gzip.compress(raw.read_bytes()))
            out[name] = analyse(raw)
    return out


def run(options: Options) -> dict[str, Any]:
    count = 1000 if options.quick else 3000
    # Alternate the order each round (ABC, CBA, ...) so that a drift in the machine's other
    # load weighs on the reference and the product alike; the ratio is the median of rounds.
    rounds = 1 if options.quick else 3
    measured = Pass(count, options.concurrency)
    what_if = Pass(count, options.concurrency, task_events=False)
    shipped = Pass(count, SHIPPED_CONCURRENCY, pool=SHIPPED_POOL)
    started = datetime.now(UTC)
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())

        def clean() -> None:
            env.redis.flush()
            env.sink.reset()

        passes = alternate(
            rounds,
            [
                ("reference", lambda: _reference(env, measured)),
                ("product", lambda: _product(env, database_url, measured)),
                ("no_events", lambda: _product(env, database_url, what_if)),
                ("reference_shipped", lambda: _reference(env, shipped)),
                ("product_shipped", lambda: _product(env, database_url, shipped)),
            ],
            clean,
        )
        clean()
        unit_costs = measure_round_trips(env.redis.url)
        profile = _profile(env, options, database_url, count) if options.profile else None
    ratios = [
        p["rate_per_s"] / r["rate_per_s"] for p, r in zip(passes["product"], passes["reference"], strict=True)
    ]
    what_if_ratios = [
        p["rate_per_s"] / r["rate_per_s"]
        for p, r in zip(passes["no_events"], passes["reference"], strict=True)
    ]
    ratio = round(median(ratios), 3)
    reference_rate = median([r["rate_per_s"] for r in passes["reference"]])
    product_rate = median([p["rate_per_s"] for p in passes["product"]])
    middle = ratios.index(sorted(ratios)[len(ratios) // 2])
    prefork_trips = _round_trips(passes["product"][middle].get("counted"))
    prefork_reference_trips = _round_trips(passes["reference"][middle].get("counted"))
    shipped_ratios = [
        p["rate_per_s"] / r["rate_per_s"]
        for p, r in zip(passes["product_shipped"], passes["reference_shipped"], strict=True)
    ]
    shipped_middle = shipped_ratios.index(sorted(shipped_ratios)[len(shipped_ratios) // 2])
    trips = _round_trips(passes["product_shipped"][shipped_middle].get("counted"))
    reference_trips = _round_trips(passes["reference_shipped"][shipped_middle].get("counted"))
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "jobs": count,
            "rounds": rounds,
            "worker_concurrency": options.concurrency,
            "pool": "prefork",
            "api_workers": API_WORKERS,
            "alerts_per_request": ALERTS_PER_REQUEST,
            "rate": "deliveries from the first to the last arrival at the sink",
        },
        "reference_rate_per_s": round(reference_rate, 1),
        "product_rate_per_s": round(product_rate, 1),
        "ratio": ratio,
        "ratios_by_round": [round(r, 3) for r in ratios],
        # The round whose product pass is the median: its counts and CPU stand for the rest.
        "reference": passes["reference"][ratios.index(sorted(ratios)[len(ratios) // 2])],
        "product": passes["product"][ratios.index(sorted(ratios)[len(ratios) // 2])],
        "rounds": {
            k: [{"rate_per_s": p["rate_per_s"], "cpu_ms_per_job": p["cpu_ms_per_job"]} for p in v]
            for k, v in passes.items()
        },
        "what_if": {
            "product_without_task_events": {
                "ratio": round(median(what_if_ratios), 3),
                "ratios_by_round": [round(r, 3) for r in what_if_ratios],
                "rate_per_s": round(median([p["rate_per_s"] for p in passes["no_events"]]), 1),
                "ingest_alerts_per_s": round(
                    median([p["ingest"]["alerts_per_s"] for p in passes["no_events"]]), 1
                ),
                "counted": passes["no_events"][-1].get("counted"),
                "cpu_ms_per_job": passes["no_events"][-1]["cpu_ms_per_job"],
            }
        },
        "shipped_pool": {
            "pool": SHIPPED_POOL,
            "concurrency": SHIPPED_CONCURRENCY,
            "ratio": round(median(shipped_ratios), 3),
            "ratios_by_round": [round(r, 3) for r in shipped_ratios],
            "reference_rate_per_s": round(median([r["rate_per_s"] for r in passes["reference_shipped"]]), 1),
            "product_rate_per_s": round(median([p["rate_per_s"] for p in passes["product_shipped"]]), 1),
            "worker_round_trips_per_job": trips,
            "reference_round_trips_per_job": reference_trips,
            "reference": passes["reference_shipped"][shipped_middle],
            "product": passes["product_shipped"][shipped_middle],
        },
        "prefork_round_trips_per_job": {"product": prefork_trips, "reference": prefork_reference_trips},
        "unit_costs": unit_costs,
        "goals": {
            "ratio_vs_ceiling": goal(ratio, GOAL_RATIO, higher_is_better=True),
            "worker_round_trips_per_job": goal(trips, GOAL_ROUND_TRIPS, higher_is_better=False),
        },
        "headline": (
            f"reference {reference_rate:.0f}/s, product {product_rate:.0f}/s, "
            f"ratio {ratio:.2f} (goal >= {GOAL_RATIO}); without task events {median(what_if_ratios):.2f}; "
            f"worker Redis round trips a job on the shipped pool ({SHIPPED_POOL} -c {SHIPPED_CONCURRENCY}) "
            f"{trips} (goal <= {GOAL_ROUND_TRIPS}; bare Celery {reference_trips}), "
            f"on prefork -c {options.concurrency} {prefork_trips} (bare {prefork_reference_trips}); "
            f"shipped pool ratio {median(shipped_ratios):.2f}"
        ),
        **({"profile": profile} if profile else {}),
    }
