"""SIGTERM to the whole worker fleet during a load, then a new fleet (bench/README.md; docs/design.md: the
original's shutdown abandoned queued medium and low jobs): jobs waiting in the queues, held
as retries with an ETA, or running at the signal are all delivered afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.faults.rig import Rig, payloads
from tests.support.alert_api import Background
from tests.support.books import broker_busy
from tests.support.fault_target import FaultTarget, Hit
from tests.support.fleet import wait_until
from tests.support.http_target import Reply

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


class FirstAttemptFails:
    """A quarter of the jobs get a 503 on their first attempt (so retries are held as ETA
    messages when the signal comes); every other request is answered 200 after 0.1 s."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, hit: Hit) -> Reply:
        with self._lock:
            first = hit.job_id not in self._seen
            self._seen.add(hit.job_id or "")
        if first and int((hit.job_id or "0")[-1], 16) % 4 == 0:
            return Reply(503, delay_s=0.05)
        return Reply(200, delay_s=0.1)


# The fleet as shipped (gevent pools) and prefork.
POOLS = {"prefork": {"pool": "prefork", "concurrency": 2}, "gevent": {"pool": "gevent", "concurrency": 20}}


@pytest.mark.parametrize("pool", list(POOLS))
def test_sigterm_to_the_fleet_mid_load_then_a_new_fleet_loses_nothing(
    pool: str, fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("hook", FirstAttemptFails())
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target], PUBLISHING_RETRY_BASE_S="1")
    try:
        fleet = [rig.fleet.start(f"w{i}", **POOLS[pool]) for i in (1, 2)]
        sender = rig.start_api()
        load = Background(
            sender, payloads("Term", 200, severities=("critical", "warning", "info")), threads=2
        )
        wait_until(lambda: rig.delivered_count() >= 50, 60)
        for worker in fleet:
            assert worker.process is not None
            worker.process.terminate()
        for worker in fleet:
            assert worker.process is not None
            worker.process.wait(40)
        stopped_at = rig.delivered_count()
        load.join()
        waiting = broker_busy(rig.redis)
        assert waiting > 0, "nothing was left to do after the shutdown: the test proved nothing"

        for i in (3, 4):
            rig.fleet.start(f"w{i}", **POOLS[pool])
        books = rig.books(timeout_s=90)
        record_books(f"4 SIGTERM fleet + restart ({pool})", books)
        print(f"delivered before the new fleet: {stopped_at}; messages left in the broker: {waiting}")
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
        assert books.submitted == 200
        assert books.in_dlq == 0
    finally:
        rig.close()
        target.stop()
