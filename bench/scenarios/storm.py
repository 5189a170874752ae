"""Storm: a backlog drained to a target that answers in 200 ms, by workers that keep many
requests in flight (docs/operations.md (Worker pools)).

N alerts (10,000; quick 2,000) go through ``POST /webhook`` upfront, then ``celery -A
workers.main worker -P gevent -c 100`` drains them to the sink's ``/slow200``. Reference:
the same N jobs enqueued by ``apply_async`` for ``bench/reference_app.py`` (a task that only
POSTs) on the same pool and concurrency; rounds alternate as in ``ceiling``. Beside them, the
worker as shipped before I/O pools (prefork ``-c 8``) on a smaller backlog: at 200 ms a job
it cannot pass 40/s, and its rate is steady long before N. Rate = deliveries from the first
to the last arrival at the sink.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.counting import Counting
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
from bench.services import dlq_database, dlq_rows
from bench.sink import first_delivery
from bench.stats import goal, rate_per_s
from bench.traffic import concurrent, job_priorities

NAME = "storm"
POOL = "gevent"
CONCURRENCY = 100
PREFORK_CONCURRENCY = 8
# The node pass: as many gevent processes as this machine has cores, sharing the 100 slots.
NODE_PROCESSES = 2
NODE_CONCURRENCY = CONCURRENCY // NODE_PROCESSES
ROUTE = "slow200"
GOAL_RATIO = 0.8
GOAL_RATE_PER_S = 300.0
ALERTS_PER_REQUEST = 100
API_WORKERS = 2


def _drain(
    env: Env,
    workers: list[Proc],
    count: int,
    what: str,
    spy: str | None = None,
    counting: Counting | None = None,
) -> dict[str, Any]:
    """Wait for ``count`` deliveries: the rate, the worker trees' CPU a job and, counted in
    the first worker, its Redis round trips a job (each process drains its share)."""
    wait_until(lambda: env.sink.delivered() > 0 or None, 120, f"{what}: first delivery", 0.02)
    first = workers[0]
    profiler = PySpy(env.supervisor, spy, first.pid, env.run_dir / f"profile-{spy}.txt") if spy else None
    cpu_before = [tree_cpu_s(w.pid) for w in workers]
    try:
        wait_delivered(env, count, max(300.0, count / 10), what, workers)
    finally:
        if profiler is not None:
            profiler.stop()
    cpu_s = sum(cpu_delta_s(b, tree_cpu_s(w.pid)) for b, w in zip(cpu_before, workers, strict=True))
    times = sorted(first_delivery(env.sink.records()).values())
    figures: dict[str, Any] = {
        "jobs": count,
        "delivered": len(times),
        "rate_per_s": round(rate_per_s(times), 1),
        "span_s": round(times[-1] - times[0], 2),
        "worker_cpu_ms_per_job": round(1000 * cpu_s / count, 3),
        "max_in_flight": env.sink.stats().get("max_in_flight", {}).get(ROUTE),
    }
    if counting is not None and len(workers) == 1:
        counted = counting.read(first.pid, count)["parent"]
        figures["redis_round_trips_per_job"] = counted["redis_round_trips_per_job"]
        figures["redis_round_trips_by_command_per_job"] = counted["by_command_per_job"]
    return figures


def _reference(env: Env, count: int, pool: str, concurrency: int, processes: int = 1) -> dict[str, Any]:
    messages = AlertSource().job_messages(count, "sink", "warning")
    enqueue_reference(env, "tuned", env.sink.url(ROUTE), messages, "medium")
    counting = Counting(env.run_dir, "reference")
    workers = [
        start_reference_worker(
            env, "tuned", concurrency, pool=pool, name=f"reference{n}", extra_env=counting.env()
        )
        for n in range(processes)
    ]
    try:
        return _drain(env, workers, count, f"reference {pool} run", counting=counting)
    finally:
        for worker in workers:
            env.supervisor.stop(worker)


def _product(
    env: Env,
    database_url: str,
    count: int,
    pool: str,
    concurrency: int,
    spy: str | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    product = Product(
        env.supervisor, env.run_dir, env.redis, database_url, [webhook_target("sink", env.sink.url(ROUTE))]
    )
    api = product.start_api(API_WORKERS)
    try:
        bodies = AlertSource().bodies(count // ALERTS_PER_REQUEST, ALERTS_PER_REQUEST, "warning")
        sent, elapsed = concurrent(f"{product.api_url}/webhook", bodies, clients=API_WORKERS)
    finally:
        env.supervisor.stop(api)
    accepted = len(job_priorities(sent))
    if accepted != count:
        errors = [s.error for s in sent if s.error][:3]
        raise RuntimeError(f"the API accepted {accepted} of {count} alerts: {errors}")
    counting = Counting(env.run_dir, "worker")
    workers = [
        product.start_worker(
            f"general{n}", "high,medium,low", concurrency, counting.env(), wait_ready=False, pool=pool
        )
        for n in range(processes)
    ]
    try:
        figures = _drain(env, workers, count, f"product {pool} run", spy, counting if pool == POOL else None)
    finally:
        for worker in workers:
            env.supervisor.stop(worker)
    figures["ingest_alerts_per_s"] = round(count / elapsed, 1)
    figures["dlq_rows"] = dlq_rows(database_url)
    return figures


def run(options: Options) -> dict[str, Any]:
    count = 2000 if options.quick else 10_000
    prefork_count = 400 if options.quick else 1000
    rounds = 1 if options.quick else 3
    started = datetime.now(UTC)
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())

        def clean() -> None:
            env.redis.flush()
            env.sink.reset()

        passes = alternate(
            rounds,
            [
                ("reference", lambda: _reference(env, count, POOL, CONCURRENCY)),
                ("product", lambda: _product(env, database_url, count, POOL, CONCURRENCY)),
            ],
            clean,
        )
        # A node of this machine's cores: one gevent process a core, the same slots in all.
        node = {}
        for side, measure in (
            ("reference", lambda: _reference(env, count, POOL, NODE_CONCURRENCY, NODE_PROCESSES)),
            (
                "product",
                lambda: _product(env, database_url, count, POOL, NODE_CONCURRENCY, None, NODE_PROCESSES),
            ),
        ):
            clean()
            node[side] = measure()
        clean()
        prefork = _product(env, database_url, prefork_count, "prefork", PREFORK_CONCURRENCY)
        profile = None
        if options.profile:
            clean()
            _product(env, database_url, count, POOL, CONCURRENCY, spy="worker")
            raw = env.run_dir / "profile-worker.txt"
            profile = analyse(raw) if raw.exists() else None
    ratios = [
        p["rate_per_s"] / r["rate_per_s"] for p, r in zip(passes["product"], passes["reference"], strict=True)
    ]
    ratio = round(median(ratios), 3)
    # Worker CPU a job, reference over product: steadier than the rates on a busy machine,
    # where a worker's rate is the CPU it gets over its CPU a job.
    cpu_ratios = [
        r["worker_cpu_ms_per_job"] / p["worker_cpu_ms_per_job"]
        for p, r in zip(passes["product"], passes["reference"], strict=True)
    ]
    reference_rate = median([r["rate_per_s"] for r in passes["reference"]])
    product_rate = median([p["rate_per_s"] for p in passes["product"]])
    middle = ratios.index(sorted(ratios)[len(ratios) // 2])
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "jobs": count,
            "rounds": rounds,
            "pool": POOL,
            "worker_concurrency": CONCURRENCY,
            "target_answers_after_s": 0.2,
            "prefork": {"jobs": prefork_count, "worker_concurrency": PREFORK_CONCURRENCY},
            "api_workers": API_WORKERS,
            "rate": "deliveries from the first to the last arrival at the sink",
        },
        "reference_rate_per_s": round(reference_rate, 1),
        "product_rate_per_s": round(product_rate, 1),
        "prefork_rate_per_s": prefork["rate_per_s"],
        "ratio": ratio,
        "ratios_by_round": [round(r, 3) for r in ratios],
        "cpu_per_job_ratio": round(median(cpu_ratios), 3),
        # One gevent process: the consumer's round trips and the jobs' together.
        "worker_round_trips_per_job": {
            "product": passes["product"][middle].get("redis_round_trips_per_job"),
            "reference": passes["reference"][middle].get("redis_round_trips_per_job"),
        },
        "reference": passes["reference"][middle],
        "product": passes["product"][middle],
        "prefork": prefork,
        "node": {
            "processes": NODE_PROCESSES,
            "worker_concurrency_each": NODE_CONCURRENCY,
            "reference": node["reference"],
            "product": node["product"],
            "ratio": round(node["product"]["rate_per_s"] / node["reference"]["rate_per_s"], 3),
        },
        "rounds": {k: [p["rate_per_s"] for p in v] for k, v in passes.items()},
        "goals": {
            "ratio_vs_bare_celery": goal(ratio, GOAL_RATIO, higher_is_better=True),
            "alerts_per_s": goal(round(product_rate, 1), GOAL_RATE_PER_S, higher_is_better=True),
            "alerts_per_s_one_process_a_core": goal(
                node["product"]["rate_per_s"], GOAL_RATE_PER_S, higher_is_better=True
            ),
        },
        "headline": (
            f"{POOL} -c {CONCURRENCY}, target 200 ms: reference {reference_rate:.0f}/s, product "
            f"{product_rate:.0f}/s (goal >= {GOAL_RATE_PER_S:.0f}), ratio {ratio:.2f} (goal >= "
            f"{GOAL_RATIO}), worker CPU a job ratio {median(cpu_ratios):.2f}, worker Redis round trips a job "
            f"{passes['product'][middle].get('redis_round_trips_per_job')} (bare "
            f"{passes['reference'][middle].get('redis_round_trips_per_job')}); {NODE_PROCESSES} processes "
            f"-c {NODE_CONCURRENCY}: reference {node['reference']['rate_per_s']:.0f}/s, product "
            f"{node['product']['rate_per_s']:.0f}/s; prefork -c {PREFORK_CONCURRENCY} {prefork['rate_per_s']:.0f}/s"
        ),
        **({"profile": profile} if profile else {}),
    }
