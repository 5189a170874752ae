"""Ingest: ``POST /webhook`` with 100-alert payloads from several concurrent clients against
gunicorn with a few workers (no Celery worker running: only acceptance is measured), beside
a loop of plain ``apply_async`` calls of the reference app on the same Redis for the same
number of messages (the very messages the product would enqueue). Alerts accepted a second,
request latency, and the ratio; rounds alternate to spread the machine's other load."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Env, Options, environment, machine_facts
from bench.product import Product, webhook_target
from bench.reference_app import TASK, create_reference_app
from bench.scenarios.common import alternate, median
from bench.services import command_delta, dlq_database
from bench.stats import goal, summary_ms
from bench.traffic import concurrent, job_priorities

NAME = "ingest"
ALERTS_PER_REQUEST = 100
CLIENTS = 4
API_WORKERS = 4
GOAL_RATIO = 2.5


def _plain(env: Env, count: int) -> dict[str, Any]:
    messages = AlertSource().job_messages(count, "sink", "warning")
    app = create_reference_app(env.redis.url, "tuned")
    task = app.tasks[TASK]
    url = env.sink.url("fast")
    before = env.redis.command_counts()
    try:
        task.apply_async(kwargs={"url": url, "message": messages[0]}, queue="medium")  # connect first
        started = time.perf_counter()
        for message in messages[1:]:
            task.apply_async(kwargs={"url": url, "message": message}, queue="medium")
        elapsed = time.perf_counter() - started
    finally:
        app.close()
    queued = int(env.redis.client.llen("medium"))
    return {
        "messages": count,
        "queued": queued,
        "messages_per_s": round((count - 1) / elapsed, 1),
        "redis_commands": command_delta(before, env.redis.command_counts(), count),
    }


def _ours(env: Env, product: Product, count: int) -> dict[str, Any]:
    bodies = AlertSource().bodies(count // ALERTS_PER_REQUEST, ALERTS_PER_REQUEST, "warning")
    before = env.redis.command_counts()
    sent, elapsed = concurrent(f"{product.api_url}/webhook", bodies, CLIENTS)
    accepted = len(job_priorities(sent))
    return {
        "alerts": count,
        "accepted": accepted,
        "failed_requests": sum(1 for s in sent if s.status != 202),
        "queued": int(env.redis.client.llen("medium")),
        "alerts_per_s": round(accepted / elapsed, 1),
        "request_latency": {
            k: v for k, v in summary_ms([s.latency_s for s in sent]).items() if k != "cdf_ms"
        },
        "redis_commands": command_delta(before, env.redis.command_counts(), count),
    }


def run(options: Options) -> dict[str, Any]:
    count = 5000 if options.quick else 20_000
    rounds = 1 if options.quick else 3
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
        product.start_api(workers=API_WORKERS)

        def clean() -> None:
            env.redis.flush()

        passes = alternate(
            rounds,
            [("plain", lambda: _plain(env, count)), ("ours", lambda: _ours(env, product, count))],
            clean,
        )
    ratios = [
        o["alerts_per_s"] / p["messages_per_s"] for o, p in zip(passes["ours"], passes["plain"], strict=True)
    ]
    ratio = round(median(ratios), 3)
    ours_rate = median([o["alerts_per_s"] for o in passes["ours"]])
    plain_rate = median([p["messages_per_s"] for p in passes["plain"]])
    mid = ratios.index(sorted(ratios)[len(ratios) // 2])
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "alerts": count,
            "rounds": rounds,
            "alerts_per_request": ALERTS_PER_REQUEST,
            "clients": CLIENTS,
            "api_workers": API_WORKERS,
            "reference": "one thread, apply_async in a loop, same broker options and message",
        },
        "ours_alerts_per_s": round(ours_rate, 1),
        "plain_apply_async_per_s": round(plain_rate, 1),
        "ratio": ratio,
        "ratios_by_round": [round(r, 3) for r in ratios],
        "ours": passes["ours"][mid],
        "plain": passes["plain"][mid],
        "goals": {"ratio_vs_apply_async_loop": goal(ratio, GOAL_RATIO, True)},
        "headline": (
            f"API {ours_rate:.0f} alerts/s vs apply_async loop {plain_rate:.0f}/s: ratio {ratio:.2f} "
            f"(goal >= {GOAL_RATIO}); request p99 {passes['ours'][mid]['request_latency'].get('p99_ms')} ms"
        ),
    }
