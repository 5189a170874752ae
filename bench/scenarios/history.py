"""What the delivery history costs: the product's delivery rate with ``PUBLISHING_HISTORY=1``
beside ``PUBLISHING_HISTORY=0``, on a loopback sink, N alerts queued through the API first and
then drained by one worker (rate = deliveries from the first to the last arrival at the sink).
Passes alternate (on, off, off, on, ...) so a drift in the machine's load weighs on both; the
figure is the median ratio, beside the worker's CPU per job in each mode. With history on, the run also waits for every attempt to reach the
database, so the flusher is seen to keep up. The goal: at most 10 % of throughput.

``.venv/bin/python -m bench.scenarios.history [--quick]`` (not one of ``make bench``'s
scenarios); the result goes to ``bench/results/history.json``."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts, write_result
from bench.processes import wait_until
from bench.product import Product, webhook_target
from bench.scenarios.ceiling import _drain
from bench.scenarios.common import alternate, median
from bench.services import dlq_database
from bench.stats import goal
from bench.traffic import concurrent, job_priorities

NAME = "history"
GOAL_COST = 0.10
ALERTS_PER_REQUEST = 100


def _history_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM publishing_history")).scalar_one())
    finally:
        engine.dispose()


def _pass(env: Env, database_url: str, count: int, concurrency: int, history: bool) -> dict[str, Any]:
    switch = {"PUBLISHING_HISTORY": "1" if history else "0", "PUBLISHING_HISTORY_FLUSH_INTERVAL_S": "1"}
    product = Product(
        env.supervisor,
        env.run_dir,
        env.redis,
        database_url,
        [webhook_target("sink", env.sink.url("fast"))],
        env=switch,
    )
    api = product.start_api(2)
    try:
        bodies = AlertSource().bodies(count // ALERTS_PER_REQUEST, ALERTS_PER_REQUEST, "warning")
        sent, _ = concurrent(f"{product.api_url}/webhook", bodies, clients=2)
        if len(job_priorities(sent)) != count:
            raise RuntimeError(f"the API accepted {len(job_priorities(sent))} of {count} alerts")
    finally:
        env.supervisor.stop(api)
    before = _history_rows(database_url)
    worker = product.start_worker("general", "high,medium,low", concurrency, wait_ready=False)
    try:
        figures = _drain(env, worker, count, f"history {'on' if history else 'off'}")
        if history:
            started = time.monotonic()
            wait_until(
                lambda: _history_rows(database_url) - before >= count or None, 120, "history flushed", 0.2
            )
            figures["flushed_within_s_after_drain"] = round(time.monotonic() - started, 2)
    finally:
        env.supervisor.stop(worker)
    return figures


def run(options: Options) -> dict[str, Any]:
    count = 1000 if options.quick else 3000
    rounds = 1 if options.quick else 5
    started = datetime.now(UTC)
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())

        def clean() -> None:
            env.redis.flush()
            env.sink.reset()

        passes = alternate(
            rounds,
            [
                ("on", lambda: _pass(env, database_url, count, options.concurrency, True)),
                ("off", lambda: _pass(env, database_url, count, options.concurrency, False)),
            ],
            clean,
        )
    ratios = [
        on["rate_per_s"] / off["rate_per_s"] for on, off in zip(passes["on"], passes["off"], strict=True)
    ]
    cost = round(1 - median(ratios), 3)
    on_rate = median([p["rate_per_s"] for p in passes["on"]])
    off_rate = median([p["rate_per_s"] for p in passes["off"]])
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "jobs": count,
            "rounds": rounds,
            "worker_concurrency": options.concurrency,
            "sink": "loopback",
        },
        "history_on_rate_per_s": round(on_rate, 1),
        "history_off_rate_per_s": round(off_rate, 1),
        "cost": cost,
        # Steadier than the rate on a shared machine: the worker tree's CPU per delivered job.
        "worker_cpu_ms_per_job": {
            name: round(median([p["cpu_ms_per_job"]["worker"] for p in passes[name]]), 3)
            for name in ("on", "off")
        },
        "ratios_by_round": [round(r, 3) for r in ratios],
        "rounds": passes,
        "goals": {"history_cost": goal(cost, GOAL_COST, higher_is_better=False)},
        "headline": f"history on {on_rate:.0f}/s, off {off_rate:.0f}/s: cost {cost:.1%} (goal <= {GOAL_COST:.0%})",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.history", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    options = Options(quick=args.quick)
    begun = datetime.now(UTC)
    figures = run(options)
    path = write_result(options, NAME, figures, begun)
    print(json.dumps({"headline": figures["headline"], "result": str(path)}, indent=2))
