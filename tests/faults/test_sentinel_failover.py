"""A Sentinel failover under load, without ``WAIT``: the primary is killed while the API takes
alerts and a worker delivers them, and the replica Sentinel promotes may lack the primary's
last writes (replication is asynchronous). A message taken, or a retry sent, in those last
milliseconds can be gone while its tracking entry, written before it, survives; the
reconciler (docs/design.md (Reconciler)) sends such a job again. Every job a 202 accepted is
delivered or in the DLQ afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

from tests.faults.rig import POOLS, Rig, Supervisor, payloads
from tests.support.alert_api import Background
from tests.support.fault_target import FaultTarget
from tests.support.fleet import wait_until
from tests.support.http_target import Reply
from tests.support.private_services import PrivateRedis, PrivateSentinel

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

RECONCILE_FAST = {
    "PUBLISHING_RECONCILE_INTERVAL_S": "2",
    "PUBLISHING_RECONCILE_GRACE_S": "3",
    "PUBLISHING_INSECURE_NO_AUTH": "1",  # the rig's API thread runs without tokens
}


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


@pytest.mark.parametrize("pool", list(POOLS))
def test_a_sentinel_failover_without_wait_under_load_loses_no_accepted_job(
    pool: str, sentinel_set, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    primary, replica, sentinels = sentinel_set
    url = ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in sentinels)
    target = FaultTarget("hook", Reply(200, delay_s=0.05))
    rig = Rig(tmp_path, primary.url, dlq_database_url, [target], REDIS_URL=url, **RECONCILE_FAST)
    # The books read the broker wherever Sentinel says the primary is.
    rig.redis.close()
    rig.redis = Sentinel([("127.0.0.1", s.port) for s in sentinels], socket_timeout=2).master_for(
        "mymaster", socket_timeout=5
    )
    try:
        rig.fleet.start("w1", **POOLS[pool])
        sender = rig.start_api()
        load = Background(
            sender,
            payloads("Failover", 300, severities=("critical", "warning", "info")),
            threads=3,
            pace_s=0.15,
        )
        wait_until(lambda: rig.delivered_count() >= 60, 60)
        primary.stop(kill=True)  # no WAIT: whatever the replica has not received is gone
        killed = time.monotonic()
        watcher = redis.Redis(port=sentinels[0].port)
        wait_until(lambda: watcher.sentinel_get_master_addr_by_name("mymaster")[1] == replica.port, 30, 0.2)
        failover_s = time.monotonic() - killed
        # A fleet is supervised: a worker that kombu's transport ends in the failover ("Unrecoverable
        # error: 'NoneType' object has no attribute 'hostname'") is started again, as it would be.
        supervisor = Supervisor(rig, **POOLS[pool])
        load.join(180)

        books = rig.books(timeout_s=120)
        supervisor.stop()
        print(f"workers restarted by the supervisor: {supervisor.restarts}")
        record_books(f"2 Sentinel failover (no WAIT, {pool})", books)
        print(f"failover {failover_s:.1f} s; sender statuses {sender.statuses}, resends {sender.resends}")
        assert books.submitted == 300
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
    finally:
        rig.close()
        target.stop()
