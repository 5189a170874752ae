"""kill -9 of a worker in the middle of a load (docs/design.md (Job states); bench/README.md): of a prefork child, whose job
comes back at once (reject on worker lost), and of the main process, prefork or gevent,
whose reserved and running jobs come back after the visibility timeout to the worker started
in its place."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rig import FAST_RECONCILER, POOLS, Rig, payloads
from tests.support.alert_api import Background
from tests.support.fault_target import FaultTarget
from tests.support.fleet import wait_until
from tests.support.http_target import Reply
from tests.support.procs import socket_owner

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

SLOW = Reply(200, delay_s=0.2)


@pytest.fixture
def slow_targets() -> Iterator[list[FaultTarget]]:
    targets = [FaultTarget("slow-a", SLOW), FaultTarget("slow-b", SLOW)]
    yield targets
    for target in targets:
        target.stop()


def _busy_child(rig: Rig, candidates: list[int]) -> int | None:
    """A child that is delivering right now: the owner of an unanswered request's socket."""
    for target in rig.targets:
        for hit in target.snapshot():
            if hit.done is None:
                owner = socket_owner(hit.client_port, target.port, candidates)
                if owner is not None:
                    return owner
    return None


def test_kill_9_of_a_prefork_child_mid_load_loses_nothing(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, slow_targets, record_books
) -> None:
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, slow_targets)
    try:
        worker = rig.fleet.start("w1", concurrency=4)
        sender = rig.start_api()
        load = Background(
            sender, payloads("ChildKill", 120, severities=("critical", "warning", "info")), threads=2
        )
        killed: list[int] = []
        for threshold in (30, 90):
            wait_until(lambda t=threshold: rig.delivered_count() >= t, 60)
            victim = wait_until(lambda: _busy_child(rig, rig.fleet.children(worker)), 10, 0.01)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
        load.join()

        books = rig.books(timeout_s=90)
        record_books("1a kill -9 prefork child", books)
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
        assert books.unknown == 0
        assert books.submitted == 240
        logs = rig.fleet.logs()
        assert all(f"pid:{pid}" in logs for pid in killed), "the worker never noticed a child died"
    finally:
        rig.close()


# A busy gevent worker reads a BRPOP's answer when its turn comes: a kill in between takes the
# message off its queue before kombu records it as unacknowledged, and the reconciler sends it
# again from tracking (docs/design.md (Reconciler)); here it looks every 2 s.
@pytest.mark.parametrize("pool", list(POOLS))
def test_kill_9_of_the_worker_main_process_mid_load_loses_nothing(
    pool: str, fresh_redis: str, dlq_database_url: str, tmp_path: Path, slow_targets, record_books
) -> None:
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, slow_targets, **FAST_RECONCILER)
    try:
        first = rig.fleet.start("w1", **POOLS[pool])
        assert first.process is not None
        sender = rig.start_api()
        load = Background(sender, payloads("MainKill", 100, severities=("critical", "warning")), threads=2)
        wait_until(lambda: rig.delivered_count() >= 40, 60)
        # A prefork worker delivers in its children, a gevent one in its own process.
        delivering = rig.fleet.children(first) if pool == "prefork" else [first.process.pid]
        wait_until(lambda: _busy_child(rig, delivering), 10, 0.01)
        rig.fleet.kill_main(first)
        load.join()
        rig.fleet.start("w2", **POOLS[pool])

        books = rig.books(timeout_s=90)
        record_books(f"1b kill -9 worker main ({pool})", books)
        if books.lost:
            for job_id, lines in rig.whereabouts(books.lost_ids).items():
                print(f"lost job {job_id}:", *lines, sep="\n  ")
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
        assert books.unknown == 0
        assert books.submitted == 200
    finally:
        rig.close()
