"""Reading costs the page, not the history (docs/design.md (Job states)): the Redis commands that
``GET .../jobs``, ``.../queue/stats``, ``.../queue/status`` and a ``/metrics`` scrape send are
counted, and are the same with 100 tracked jobs as with 5,000. Counts, not timings."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from redis.client import Pipeline

from api import create_app
from api.queue import WorkerSightings
from publishing.adapters import composition
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.priority import Priority
from publishing.settings import Settings
from publishing.tracking import JobSnapshot, JobState
from tests.support.fleet import write_targets

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

TOKEN = "reader-read-costs-token-0001"
API = "/api/v2/publishing"
TARGETS = ("alpha-hook", "beta-hook", "gamma-hook")
READS = {
    "jobs first page": f"{API}/jobs?limit=50",
    # Pages that 100 jobs fill too (a fifth of them in each state, a third to each target).
    "jobs by state": f"{API}/jobs?limit=20&state=succeeded",
    "jobs by target": f"{API}/jobs?limit=20&target=beta-hook",
    "queue stats": f"{API}/queue/stats",
    "queue status": f"{API}/queue/status",
    "metrics": "/metrics",
}
STATES = (JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED, JobState.DLQ, JobState.DEFERRED)


class CountingPipeline(Pipeline):
    counts: Counter[str]

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.counts.update(str(args[0]).upper() for args, _ in self.command_stack)
        return super().execute(raise_on_error)


class CountingRedis(redis.Redis):
    """Counts every command sent, one by one or in a pipeline, by name."""

    counts: Counter[str] = Counter()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.counts[str(args[0]).upper()] += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = CountingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.counts = self.counts
        return pipe


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    CountingRedis.counts = counts

    def client(settings: Settings) -> redis.Redis:
        return CountingRedis.from_url(settings.redis_url)

    monkeypatch.setattr(composition, "redis_client", client)
    yield counts


def api(redis_url: str, database_url: str, tmp_path: Path) -> Flask:
    hooks = [{"name": name, "type": "webhook", "url": f"http://127.0.0.1:9/{name}"} for name in TARGETS]
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "PUBLISHING_TARGETS": str(write_targets(tmp_path / "targets.yaml", hooks)),
            "PUBLISHING_API_TOKENS": f"reader:{TOKEN}",
        }
    )
    return create_app(settings)


def track(client: redis.Redis, count: int, batch: int = 500) -> None:
    tracker = RedisJobTracker(client, prefix="publishing", capacity=100_000, ttl_s=3600)
    for start in range(0, count, batch):
        tracker.record_many(
            [
                JobSnapshot(
                    id=f"job-{n}",
                    fingerprint=f"fp-{n}",
                    alert_name="ReadCost",
                    target=TARGETS[n % len(TARGETS)],
                    priority=list(Priority)[n % len(Priority)],
                    state=STATES[n % len(STATES)],
                    submitted_at=1_700_000_000 + n,
                )
                for n in range(start, min(start + batch, count))
            ]
        )


def commands_per_read(app: Flask, counts: Counter[str]) -> dict[str, Counter[str]]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for path in READS.values():  # warm: scripts loaded, workers pinged once
        assert client.get(path, headers=headers).status_code == 200
    sent: dict[str, Counter[str]] = {}
    for name, path in READS.items():
        counts.clear()
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        sent[name] = Counter(counts)
    return sent


def test_reads_send_as_many_commands_with_5000_jobs_as_with_100(
    counted: Counter[str], fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    filler = redis.Redis.from_url(fresh_redis)
    track(filler, 100)
    small = commands_per_read(api(fresh_redis, dlq_database_url, tmp_path), counted)
    track(filler, 5_000)
    large = commands_per_read(api(fresh_redis, dlq_database_url, tmp_path), counted)
    filler.close()

    assert large == small
    assert all(sum(sent.values()) > 0 for sent in small.values()), small
    # The page is read whole: one hash a job listed.
    assert small["jobs first page"]["HMGET"] == 50
    assert small["jobs by target"]["HMGET"] == 20


def test_a_stale_worker_list_is_served_while_one_ping_runs_apart() -> None:
    """``/queue/stats`` never waits for a ping after the first answer: a stale answer starts one
    ping in the background and is served meanwhile, with the time it was seen."""
    now = [1000.0]
    release = threading.Event()
    pings: list[str] = []

    def ping() -> list[str]:
        pings.append("ping")
        if len(pings) > 1:
            assert release.wait(10)
        return [f"w{len(pings)}@host"]

    sightings = WorkerSightings(ping, clock=lambda: now[0], max_age_s=10)
    first = sightings.latest()
    assert first is not None and (first.names, first.at) == (["w1@host"], 1000.0)

    now[0] += 5
    assert sightings.latest() is first and pings == ["ping"]

    now[0] += 6  # stale: one ping starts, however many requests find it so
    assert sightings.latest() is first
    assert sightings.latest() is first
    assert pings == ["ping", "ping"]
    release.set()
    fresh = None
    for _ in range(1000):
        fresh = sightings.latest()
        if fresh is not first:
            break
        threading.Event().wait(0.01)
    assert fresh is not None and (fresh.names, fresh.at) == (["w2@host"], 1011.0)
