"""Nodes: the capacity model (docs/capacity.md) checked against several worker nodes on this
machine. One pass a fleet size: N alerts (3,000; quick 1,000) through ``POST /webhook``, then
1, 2 and 3 worker processes (``-c 2`` each, as separate nodes would run) drain them to the
sink. The nodes start on a queue nothing is sent to and, once every one is ready, are told
together to consume the real ones (Celery's ``add_consumer``): no node's start-up is measured
as the drain of the others. The one-node pass gives the unit costs (CPU per job of the
workers, Redis and the sink); the model predicts each larger fleet's rate as the smaller of the nodes' own rate
(``n`` times one node's) and what the machine's free CPU pays for (free cores over the CPU a
job costs), and the pass measures it."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.noise import _machine_busy_s
from bench.processes import Proc, cpu_delta_s, tree_cpu_s
from bench.product import Product, webhook_target
from bench.scenarios.common import wait_delivered
from bench.services import dlq_database
from bench.sink import first_delivery
from bench.stats import rate_per_s
from bench.traffic import concurrent, job_priorities
from publishing.adapters.broker import producer_app
from publishing.routing import QUEUES
from publishing.settings import Settings

NAME = "nodes"
ALERTS_PER_REQUEST = 100
CONCURRENCY_PER_NODE = 2
FLEETS = (1, 2, 3)
# The model holds when each measured rate is within this fraction of its prediction.
TOLERANCE = 0.25
# Where the nodes wait, consuming nothing, until every one of them is ready.
STANDBY_QUEUE = "bench-standby"


def _consume_all(product: Product, nodes: int) -> None:
    """Every node starts consuming the job queues, at once; the one the jobs are on last. A
    node that has just said "ready" may not have subscribed to the broadcast yet: it is asked
    again until it answers (asking a node twice changes nothing)."""
    app = producer_app(Settings.from_env(product.env))
    expected = {f"node{i}@{socket.gethostname()}" for i in range(nodes)}
    try:
        for queue in sorted(QUEUES, key=lambda q: q == "medium"):
            answered: set[str] = set()
            for _ in range(20):
                replies = app.control.add_consumer(
                    queue,
                    exchange="publishing",
                    routing_key=queue,
                    reply=True,
                    timeout=1.0,
                    limit=len(expected - answered),
                    destination=sorted(expected - answered),
                )
                answered |= {name for reply in replies or [] for name in reply}
                if answered >= expected:
                    break
            else:
                raise RuntimeError(f"nodes {sorted(expected - answered)} never answered add_consumer {queue}")
    finally:
        app.close()


def _pass(env: Env, product: Product, nodes: int, count: int) -> dict[str, Any]:
    bodies = AlertSource().bodies(count // ALERTS_PER_REQUEST, ALERTS_PER_REQUEST, "warning")
    sent, _ = concurrent(f"{product.api_url}/webhook", bodies, 2)
    if len(job_priorities(sent)) != count:
        raise RuntimeError(f"the API accepted {len(job_priorities(sent))} of {count} alerts")
    workers: list[Proc] = []
    try:
        for i in range(nodes):
            workers.append(product.start_worker(f"node{i}", STANDBY_QUEUE, CONCURRENCY_PER_NODE))
        trees = {"redis": env.redis.proc.pid, "sink": env.sink.pid} | {w.name: w.pid for w in workers}
        before = {name: tree_cpu_s(pid) for name, pid in trees.items()}
        busy_before, started = _machine_busy_s(), time.monotonic()
        _consume_all(product, nodes)
        wait_delivered(env, count, max(300.0, count / 10), f"{nodes} node(s)", workers)
        wall = time.monotonic() - started
        busy = _machine_busy_s() - busy_before
        spent = {name: cpu_delta_s(before[name], tree_cpu_s(pid)) for name, pid in trees.items()}
    finally:
        for worker in workers:
            env.supervisor.stop(worker)
            product.workers.remove(worker)
    times = sorted(first_delivery(env.sink.records()).values())
    worker_s = sum(v for k, v in spent.items() if k.startswith("worker"))
    ours_s = worker_s + spent["redis"] + spent["sink"]
    return {
        "nodes": nodes,
        "processes": nodes * CONCURRENCY_PER_NODE,
        "jobs": count,
        "rate_per_s": round(rate_per_s(times), 1),
        "cpu_ms_per_job": {
            "workers": round(1000 * worker_s / count, 3),
            "redis": round(1000 * spent["redis"] / count, 3),
            "sink": round(1000 * spent["sink"] / count, 3),
        },
        # Everything else the machine ran meanwhile (other work, the API idling, the harness).
        "other_cores": round(max(0.0, busy - ours_s) / wall, 2),
        "wall_s": round(wall, 2),
    }


def _predict(one: dict[str, Any], other: dict[str, Any], nproc: int) -> dict[str, Any]:
    per_job_ms = sum(one["cpu_ms_per_job"].values())
    free_cores = max(0.1, nproc - other["other_cores"])
    cpu_bound = 1000 * free_cores / per_job_ms
    nodes_bound = other["nodes"] * one["rate_per_s"]
    predicted = min(cpu_bound, nodes_bound)
    return {
        "nodes": other["nodes"],
        "predicted_rate_per_s": round(predicted, 1),
        "limit": "machine CPU" if cpu_bound < nodes_bound else "nodes",
        "measured_rate_per_s": other["rate_per_s"],
        "measured_over_predicted": round(other["rate_per_s"] / predicted, 3),
    }


def run(options: Options) -> dict[str, Any]:
    count = 1000 if options.quick else 3000
    started = datetime.now(UTC)
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())
        product = Product(
            env.supervisor,
            env.run_dir,
            env.redis,
            database_url,
            [webhook_target("sink", env.sink.url("fast"))],
        )
        product.start_api(workers=2)
        passes = []
        for nodes in FLEETS:
            env.redis.flush()
            env.sink.reset()
            passes.append(_pass(env, product, nodes, count))
    nproc = int(facts.get("nproc") or 2)
    checks = [_predict(passes[0], p, nproc) for p in passes]
    held = all(abs(c["measured_over_predicted"] - 1) <= TOLERANCE for c in checks)
    summary = ", ".join(
        f"{c['nodes']} node(s) {c['measured_rate_per_s']:.0f}/s vs {c['predicted_rate_per_s']:.0f}/s"
        for c in checks
    )
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "jobs": count,
            "concurrency_per_node": CONCURRENCY_PER_NODE,
            "fleets": list(FLEETS),
            "model": "min(n x one node's rate, free cores x 1000 / CPU ms a job of workers, Redis and sink)",
        },
        "passes": passes,
        "checks": checks,
        "goals": {"model_within_25_percent": {"measured": held, "target": True, "met": held}},
        "headline": f"measured vs predicted: {summary}",
    }
