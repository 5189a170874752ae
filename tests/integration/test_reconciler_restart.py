"""The reconciler after a Redis restart (docs/design.md (Reconciler)): a restart is when the
broker may have lost a message (taken by a BRPOP whose worker never recorded it), so the
reconciler must be looking again as soon as Redis is back, not once the lock of a pass the
restart cut short has expired."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from publishing.adapters.redis.reconcile import RedisReconciler
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.testing import RecordingEnqueuer
from tests.integration.test_reconciler import job, track
from tests.support.private_services import PrivateRedis

pytestmark = [pytest.mark.redis]

GRACE_S = 0.3


def reconciler(
    client: redis.Redis,
    enqueuer: RecordingEnqueuer,
    *,
    sleep: Callable[[float], None] = time.sleep,
    lock_s: float = 120.0,
) -> RedisReconciler:
    tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
    return RedisReconciler(
        client,
        tracker,
        enqueuer,
        None,
        prefix="t",
        grace_s=GRACE_S,
        confirm_s=0.05,
        sleep=sleep,
        lock_s=lock_s,
    )


def test_a_pass_cut_short_by_a_redis_restart_does_not_keep_the_next_ones_out(aof_redis: PrivateRedis) -> None:
    client = redis.Redis.from_url(aof_redis.url, socket_timeout=5)
    tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
    track(tracker, job("lost"))
    time.sleep(GRACE_S + 0.1)

    # Redis is killed while a pass holds the lock (between its two looks): the pass fails,
    # and the append-only file brings the lock back with the rest.
    def redis_killed(_: float) -> None:
        aof_redis.stop(kill=True)

    cut_short = reconciler(client, RecordingEnqueuer(), sleep=redis_killed, lock_s=600)
    with pytest.raises(redis.ConnectionError):
        cut_short.run_once()
    aof_redis.start()
    client = redis.Redis.from_url(aof_redis.url, socket_timeout=5)
    assert client.pttl("t:reconciler:lock") > 500_000, "the lock did not outlive the restart"

    enqueuer = RecordingEnqueuer()
    report = reconciler(client, enqueuer).run_once()
    assert report is not None, "the lock of a pass that Redis's restart ended kept the reconciler out"
    assert report.resent == ["lost"]
    assert [j.job_id for j in enqueuer.sent] == ["lost"]
    client.close()


def test_a_pass_in_progress_still_keeps_the_others_out(aof_redis: PrivateRedis) -> None:
    client = redis.Redis.from_url(aof_redis.url, socket_timeout=5)
    tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
    track(tracker, job("lost"))
    time.sleep(GRACE_S + 0.1)
    enqueuer = RecordingEnqueuer()
    other = reconciler(client, enqueuer)
    seen: list[object] = []

    # While one pass is between its two looks, another worker's pass finds the lock held.
    def another_pass(_: float) -> None:
        seen.append(other.run_once())

    report = reconciler(client, enqueuer, sleep=another_pass).run_once()
    assert seen == [None]
    assert report is not None and report.resent == ["lost"]
    assert [j.job_id for j in enqueuer.sent] == ["lost"]
    client.close()
