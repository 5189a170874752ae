"""Recovery: a target down for 60 s (connection refused; ``BENCH_OUTAGE_MODE=503`` for 503s)
under 50 alerts/s, then back. Reported: how long after its return the breaker closes, how
long until every job received before the return is delivered (the backlog drained), when the
very last job is delivered, the DLQ rows (0 expected) and a timeline for the chart.

The breaker opens after 5 failures and half-opens every 5 s
(``PUBLISHING_BREAKER_OPEN_TIMEOUT_S=5``); retries and the deferral cap are generous enough
that nothing may dead-letter during the outage. ``--quick`` shortens the outage to 20 s.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench.alerts import AlertSource
from bench.context import Options, environment, machine_facts
from bench.processes import BenchTimeout
from bench.product import KEY_PREFIX, Product, webhook_target
from bench.scenarios.common import latencies, wait_delivered
from bench.services import dlq_database, dlq_rows
from bench.stats import goal, summary_ms
from bench.traffic import Sent, job_priorities, paced

NAME = "recovery"
ALERTS_PER_REQUEST = 5
REQUESTS_PER_S = 10.0  # 50 alerts/s
GOAL_S = 30.0
SETTINGS = {
    "PUBLISHING_BREAKER_OPEN_TIMEOUT_S": "5",
    "PUBLISHING_BREAKER_FAILURE_THRESHOLD": "5",
    "PUBLISHING_MAX_RETRIES": "50",
    "PUBLISHING_RETRY_BASE_S": "1",
    "PUBLISHING_RETRY_MAX_BACKOFF_S": "10",
    "PUBLISHING_RETRY_JITTER_S": "1",
    "PUBLISHING_BREAKER_MAX_DEFERRAL_S": "1800",
    "PUBLISHING_HTTP_TIMEOUT_S": "5",
}
TARGET = "flaky"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Timeline:
    """Breaker state, queue depths and deliveries every quarter second, on a thread."""

    def __init__(self, product: Product, sink_delivered: Any) -> None:
        self._product = product
        self._delivered = sink_delivered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)
        self.rows: list[dict[str, Any]] = []

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.rows.append(
                    {
                        "t": time.time(),
                        "breaker": self._product.breaker_state(TARGET),
                        "queued": sum(self._product.queue_depths().values()),
                        "delivered": self._delivered(),
                    }
                )
            except Exception as exc:  # the timeline is best effort; the figures are not
                self.rows.append({"t": time.time(), "error": type(exc).__name__})

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run(options: Options) -> dict[str, Any]:
    before_s, outage_s, after_s = (5.0, 20.0, 15.0) if options.quick else (10.0, 60.0, 30.0)
    mode = os.environ.get("BENCH_OUTAGE_MODE", "refuse")
    started = datetime.now(UTC)
    source = AlertSource()
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())
        product = Product(
            env.supervisor,
            env.run_dir,
            env.redis,
            database_url,
            [webhook_target(TARGET, env.sink.outage_url)],
            SETTINGS,
        )
        product.start_api(workers=2)
        pools = product.start_fleet(options.concurrency, 2)
        url = f"{product.api_url}/webhook"
        warm = job_priorities(paced(url, source.bodies(10, ALERTS_PER_REQUEST), REQUESTS_PER_S))
        wait_delivered(env, len(warm), 60, "warm-up deliveries", pools)
        env.sink.reset()

        requests = int((before_s + outage_s + after_s) * REQUESTS_PER_S)
        bodies = source.bodies(requests, ALERTS_PER_REQUEST)
        sent: list[Sent] = []
        sender = threading.Thread(
            target=lambda: sent.extend(paced(url, bodies, REQUESTS_PER_S)), name="sender"
        )
        with Timeline(product, env.sink.delivered) as timeline:
            t0 = time.time()
            sender.start()
            time.sleep(before_s)
            env.sink.outage(up=False, mode=mode)
            t_down = time.time()
            time.sleep(outage_s)
            env.sink.outage(up=True, mode=mode)
            t_up = time.time()
            sender.join(timeout=after_s + 120)
            jobs = job_priorities(sent)
            drained = True
            try:
                wait_delivered(env, len(jobs), 300, "recovery deliveries", pools)
            except BenchTimeout:
                drained = False
            time.sleep(1.0)
        received, delivered, latency = latencies(product, env, jobs)
        dead = dlq_rows(database_url)
        raw = env.redis.client.hgetall(f"{KEY_PREFIX}:breaker:{{{TARGET}}}")
        breaker = {_text(k): _text(v) for k, v in raw.items()}
        answered_5xx = sum(1 for r in env.sink.records() if r[3] >= 500)

    closed_at = next((r["t"] for r in timeline.rows if r["t"] >= t_up and r.get("breaker") == "closed"), None)
    before_return = [j for j, at in received.items() if at <= t_up]
    backlog_drained_at = max((delivered.get(j, float("inf")) for j in before_return), default=None)
    last_delivered_at = max(delivered.values()) if delivered else None
    undelivered = sum(1 for j in jobs if j not in delivered)
    breaker_close_s = round(closed_at - t_up, 2) if closed_at else None
    drain_s = (
        round(backlog_drained_at - t_up, 2)
        if backlog_drained_at is not None and backlog_drained_at != float("inf")
        else None
    )
    bins: dict[int, int] = {}
    for at in delivered.values():
        bins[int(at - t0)] = bins.get(int(at - t0), 0) + 1
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "alerts_per_s": ALERTS_PER_REQUEST * REQUESTS_PER_S,
            "before_s": before_s,
            "outage_s": outage_s,
            "after_s": after_s,
            "outage_mode": mode,
            "settings": SETTINGS,
        },
        "accepted": len(jobs),
        "delivered": len(jobs) - undelivered,
        "undelivered": undelivered,
        "drained_in_time": drained,
        "dlq_rows": dead,
        "breaker_closed_after_return_s": breaker_close_s,
        "backlog_drained_after_return_s": drain_s,
        "all_delivered_after_return_s": round(last_delivered_at - t_up, 2) if last_delivered_at else None,
        # Only a 503 outage shows up at the target; refused connections never arrive.
        "attempts_answered_5xx": answered_5xx,
        "breaker_at_end": {k: breaker[k] for k in ("state", "trips", "recoveries") if k in breaker},
        "latency_of_jobs_received_during_outage": {
            k: v
            for k, v in summary_ms(
                [latency[j] for j in before_return if j in latency and received[j] >= t_down]
            ).items()
            if k != "cdf_ms"
        },
        "timeline": {
            "t0": t0,
            "down_s": round(t_down - t0, 2),
            "up_s": round(t_up - t0, 2),
            "deliveries_per_s": sorted(bins.items()),
            "samples": [
                [round(r["t"] - t0, 2), r.get("breaker"), r.get("queued"), r.get("delivered")]
                for r in timeline.rows
                if "error" not in r
            ],
        },
        "goals": {
            "breaker_closed_within_s": goal(breaker_close_s, GOAL_S, False),
            "backlog_drained_within_s": goal(drain_s, GOAL_S, False),
            "dlq_rows": goal(float(dead), 0.0, False),
            "all_delivered": {"measured": undelivered == 0, "target": True, "met": undelivered == 0},
        },
        "headline": (
            f"breaker closed {breaker_close_s} s and backlog drained {drain_s} s after the target's "
            f"return; {undelivered} undelivered, DLQ {dead}"
        ),
    }
