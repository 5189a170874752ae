"""What reading costs as the history grows: ``/metrics``, ``GET .../jobs`` (the first page, and
filtered by state and by target), ``.../queue/stats`` and ``.../queue/status``, timed in-process
through the Flask test client over the scenario's private Redis and DLQ database, with 100,
10,000 and 100,000 jobs tracked (written by the real ``RedisJobTracker.record_many``, in
batches) and one DLQ row for every 100 jobs. Each figure is the median of ``CALLS`` calls in each of ``ROUNDS`` rounds;
the goals: each read within 2x its cost at 100 jobs, and under 50 ms."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import yaml
from flask import Flask

from bench.context import Options, environment, machine_facts
from bench.scenarios.common import median
from bench.services import dlq_database
from bench.stats import goal
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter
from publishing.priority import Priority
from publishing.settings import Settings
from publishing.tracking import JobSnapshot, JobState

NAME = "reads"
SIZES = (100, 10_000, 100_000)
CALLS = 20
ROUNDS = 3  # CALLS calls a read a round, the reads interleaved: a figure is the median of all
GOAL_RATIO = 2.0
GOAL_MS = 50.0
BATCH = 1_000
DLQ_EVERY = 100  # one DLQ row for this many tracked jobs
TOKEN = "bench-reads-reader-token-0001"
API = "/api/v2/publishing"
TARGETS = ("alpha", "beta", "gamma", "delta")
STATES = (JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.FAILED, JobState.DLQ)
READS = {
    "metrics": "/metrics",
    "jobs_first_page": f"{API}/jobs?limit=50",
    # Pages that 100 jobs fill too (a fifth of them failed, a quarter to each target), so the
    # growth measured is the history's, not the page's.
    "jobs_by_state": f"{API}/jobs?limit=20&state=failed",
    "jobs_by_target": f"{API}/jobs?limit=20&target=beta",
    "queue_stats": f"{API}/queue/stats",
    "queue_status": f"{API}/queue/status",
}


def _app(redis_url: str, database_url: str, run_dir: Path) -> Flask:
    from api import create_app  # the API's modules load only for the scenario that needs them

    targets = run_dir / "targets.yaml"
    hooks = [{"name": t, "type": "webhook", "url": f"http://127.0.0.1:9/{t}"} for t in TARGETS]
    targets.write_text(yaml.safe_dump({"targets": hooks}))
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "PUBLISHING_TARGETS": str(targets),
            "PUBLISHING_API_TOKENS": f"reader:{TOKEN}",
            "PUBLISHING_TRACKING_CAPACITY": str(max(SIZES)),
        }
    )
    return create_app(settings)


def _fill(tracker: RedisJobTracker, dead_letters: SqlDeadLetterRepository, start: int, end: int) -> None:
    now = time.time()
    for first in range(start, end, BATCH):
        numbers = range(first, min(first + BATCH, end))
        tracker.record_many(
            [
                JobSnapshot(
                    id=f"job-{n:06d}",
                    fingerprint=f"fp-{n}",
                    alert_name="BenchReads",
                    target=TARGETS[n % len(TARGETS)],
                    priority=list(Priority)[n % len(Priority)],
                    state=STATES[n % len(STATES)],
                    retry_count=n % 3,
                    submitted_at=now - (end - n) / 1000,
                    completed_at=now,
                )
                for n in numbers
            ]
        )
    for n in range(start, end, DLQ_EVERY):
        dead_letters.write(
            DeadLetter(
                id=str(uuid.uuid4()),
                job_id=str(uuid.UUID(int=n)),
                fingerprint=f"fp-{n}",
                target_name=TARGETS[n % len(TARGETS)],
                target_type="webhook",
                enriched_alert={"alert": {"fingerprint": f"fp-{n}", "status": "firing"}},
                target_config={"name": TARGETS[n % len(TARGETS)], "type": "webhook"},
                error_message="HTTP 400",
                error_type=ErrorType.PERMANENT,
                retry_count=0,
                priority=Priority.MEDIUM,
                failed_at=datetime.now(UTC),
            )
        )


def _settle(client: redis.Redis, timeout_s: float = 60.0) -> None:
    """Wait (bounded) for an AOF rewrite or save the fill started: its fork competes for the CPU."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("rdb_bgsave_in_progress"):
            return
        time.sleep(0.2)


def _time_reads(app: Flask) -> dict[str, float]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times: dict[str, list[float]] = {name: [] for name in READS}
    for path in READS.values():
        assert client.get(path, headers=headers).status_code == 200  # warm: scripts, the first ping
    for _ in range(ROUNDS):
        for name, path in READS.items():
            for _ in range(CALLS):
                began = time.perf_counter()
                response = client.get(path, headers=headers)
                times[name].append(time.perf_counter() - began)
                if response.status_code != 200:
                    body = response.get_data(as_text=True)[:200]
                    raise RuntimeError(f"{path}: {response.status_code} {body}")
    return {name: round(median(values) * 1000, 3) for name, values in times.items()}


def run(options: Options) -> dict[str, Any]:
    started = datetime.now(UTC)
    with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
        facts = machine_facts(env.redis.version())
        app = _app(env.redis.url, database_url, env.run_dir)
        client = redis.Redis.from_url(env.redis.url)
        engine = create_engine_for(database_url)
        tracker = RedisJobTracker(client, prefix="publishing", capacity=max(SIZES), ttl_s=86_400)
        dead_letters = SqlDeadLetterRepository(engine)
        by_size: dict[str, dict[str, float]] = {}
        filled = 0
        try:
            for size in SIZES:
                _fill(tracker, dead_letters, filled, size)
                filled = size
                _settle(client)
                by_size[str(size)] = _time_reads(app)
        finally:
            client.close()
            engine.dispose()
    base = by_size[str(SIZES[0])]
    goals: dict[str, Any] = {}
    for size in SIZES[1:]:
        for name, ms in by_size[str(size)].items():
            ratio = round(ms / base[name], 2) if base[name] else None
            goals[f"{name}_at_{size}_vs_100"] = goal(ratio, GOAL_RATIO, higher_is_better=False)
    for size in SIZES:
        for name, ms in by_size[str(size)].items():
            goals[f"{name}_at_{size}_ms"] = goal(ms, GOAL_MS, higher_is_better=False)
    largest = by_size[str(SIZES[-1])]
    worst = max(largest, key=lambda name: largest[name] / base[name] if base[name] else 0)
    met = sum(g["met"] for g in goals.values())
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "tracked_jobs": list(SIZES),
            "dlq_rows_per_job": 1 / DLQ_EVERY,
            "calls_per_figure": CALLS * ROUNDS,
            "targets": len(TARGETS),
            "how": "in-process, Flask test client, private redis-server and DLQ database; median ms",
        },
        "median_ms": by_size,
        "goals": goals,
        "headline": (
            f"at {SIZES[-1]:,} jobs, slowest read {max(largest.values()):.1f} ms; worst growth "
            f"{worst} x{largest[worst] / base[worst]:.2f} of its cost at {SIZES[0]}; "
            f"{met}/{len(goals)} goals met (<= {GOAL_RATIO:.0f}x, < {GOAL_MS:.0f} ms)"
        ),
    }
