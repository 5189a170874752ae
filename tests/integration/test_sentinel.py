"""Redis Sentinel: a ``sentinel://`` REDIS_URL serves the broker, breaker, tracking and dedup
alike; the primary is killed mid-load, Sentinel fails over, and every job submitted is
delivered or in the DLQ."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget
from tests.support.pipeline import Pipeline, alerts, am_alert
from tests.support.private_services import PrivateRedis, PrivateSentinel

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def sentinel_set() -> Iterator[tuple[PrivateRedis, PrivateRedis, list[PrivateSentinel]]]:
    # Full sync otherwise waits 5 s for more replicas (repl-diskless-sync-delay).
    primary = PrivateRedis(extra=("--repl-diskless-sync-delay", "0"))
    primary.start()
    replica = PrivateRedis(extra=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    sentinels = [PrivateSentinel(primary.port) for _ in range(3)]
    for sentinel in sentinels:
        sentinel.start()
    try:
        watcher = redis.Redis(port=sentinels[0].port)
        wait_until(lambda: _knows_replica(watcher), 20, 0.2)
        synced = redis.Redis(port=replica.port)
        wait_until(lambda: synced.info("replication")["master_link_status"] == "up", 20, 0.1)
        yield primary, replica, sentinels
    finally:
        for sentinel in sentinels:
            sentinel.destroy()
        replica.destroy()
        primary.destroy()


def _knows_replica(watcher: redis.Redis) -> bool:
    try:
        return bool(watcher.sentinel_slaves("mymaster"))
    except redis.RedisError:
        return False


def _submit(pipeline: Pipeline, name: str) -> list[str]:
    """Submit as Alertmanager would: retry the request until it is accepted."""
    for _ in range(60):
        try:
            return [j.id for j in pipeline.submit(alerts(am_alert(name)), ["hook"]).jobs]
        except Exception:
            time.sleep(0.25)
    raise AssertionError(f"{name} was never accepted")


def test_jobs_survive_a_sentinel_failover(sentinel_set, dlq_database_url: str, tmp_path: Path) -> None:
    primary, replica, sentinels = sentinel_set
    url = ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in sentinels)
    with HttpTarget() as hook:
        pipeline = Pipeline(
            tmp_path, url, dlq_database_url, [{"name": "hook", "type": "webhook", "url": hook.url}]
        )
        try:
            pipeline.worker(concurrency=2)
            submitted = [job for i in range(20) for job in _submit(pipeline, f"Before{i}")]
            wait_until(lambda: len(hook.received) >= 5, 20)
            # Replication is asynchronous: what the primary took in its last milliseconds may be
            # gone with it (a documented Redis limit, not ours). Kill it once the replica has it all.
            redis.Redis(port=primary.port).wait(1, 5000)
            primary.stop(kill=True)
            submitted += [job for i in range(20) for job in _submit(pipeline, f"After{i}")]

            watcher = redis.Redis(port=sentinels[0].port)
            wait_until(lambda: watcher.sentinel_get_master_addr_by_name("mymaster")[1] == replica.port, 30)

            # A fleet is supervised (systemd Restart=always, a Deployment): kombu's transport can
            # take a worker down in the failover ("Unrecoverable error"), and it is started again.
            replaced: set[int] = set()

            def supervise() -> None:
                for worker in list(pipeline.workers):
                    exited = worker.process is not None and worker.process.poll() is not None
                    if exited and id(worker) not in replaced:
                        replaced.add(id(worker))
                        pipeline.worker(name=f"w{len(pipeline.workers) + 1}", concurrency=2)

            def settled() -> bool:
                supervise()
                delivered = {r.headers["Idempotency-Key"] for r in hook.received}
                dead = {row.job_id for row in pipeline.dlq_rows()}
                return set(submitted) <= delivered | dead

            try:
                wait_until(settled, 120, 0.5)
            except AssertionError:
                delivered = {r.headers["Idempotency-Key"] for r in hook.received}
                missing = sorted(set(submitted) - delivered)
                states = {m: pipeline.tracker.get(m) for m in missing}
                raise AssertionError(f"not delivered: {missing} {states}") from None
            for job_id in submitted:
                assert pipeline.job(job_id).state in (JobState.SUCCEEDED, JobState.DLQ, JobState.PROCESSING)
        finally:
            pipeline.close()
