"""A big backlog behind an open breaker (docs/design.md (Retries)): 20,000 jobs meet a target
that is down for 5 minutes. A deferral behind the open breaker parks its job in Redis and the
message is acknowledged, so the worker holds only the short waits (a busy probe slot, a short
backoff: at most its rate times ``Timings.park_after_s``), never the backlog: its main process,
which holds them, stays near its idle size, and the whole worker (main process plus pool
children, from /proc) grows by a bounded amount. A parked job is held in Redis while the
breaker stays open, so the backlog costs a few task runs an open period, not one a job (it
stays parked, none of it queued, once each job has run once). After the target returns every job is delivered.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from publishing.adapters.redis.parking import RedisParkingLot
from publishing.routing import QUEUES
from tests.faults.rig import Rig, payloads
from tests.support.fault_target import FaultTarget
from tests.support.http_target import Reply
from tests.support.procs import children

# About 7 minutes: 5 of outage, then the breaker's recovery and 20,000 deliveries.
pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.soak, pytest.mark.timeout(660)]

JOBS = 20_000
OUTAGE_S = 300.0
CONCURRENCY = 4
# What the outage may add to the idle worker's memory. Its main process holds the messages
# (prefetched, and the countdowns of 2 s at most): bounded by its rate, not the backlog, so it
# stays near its idle size (measured +24 MB). The pool children's heaps grow with the jobs they
# run, deferral or delivery alike, whatever the backlog (measured +134 to +340 MB over the 5
# minutes, by the machine's speed): that bound is the whole worker's.
MAIN_GROWTH_BOUND_MB = 100
RSS_GROWTH_BOUND_MB = 500
# Messages a worker of four processes may hold unacknowledged: prefetch plus the countdowns of
# 2 s at most, at a rate (~600 jobs/s on loopback) no such worker exceeds.
HELD_BOUND = 2_000


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def test_a_backlog_behind_an_open_breaker_stays_out_of_worker_memory(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("hook", Reply(503))
    rig = Rig(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        [target],
        # The production breaker: open 30 s; a parked deferral looks again within 60 s at most.
        PUBLISHING_BREAKER_OPEN_TIMEOUT_S="30",
        PUBLISHING_VISIBILITY_TIMEOUT_S="120",
        PUBLISHING_TRACKING_CAPACITY=str(JOBS + 1000),
        PUBLISHING_INSECURE_NO_AUTH="1",  # the rig's API thread runs without tokens
    )
    try:
        worker = rig.fleet.start("w1", concurrency=CONCURRENCY)
        assert worker.process is not None
        main = worker.process.pid
        idle_main_mb = rss_mb(main)
        idle_mb = idle_main_mb + sum(rss_mb(pid) for pid in children(main))
        sender = rig.start_api()
        outage_ends = time.monotonic() + OUTAGE_S
        for payload in payloads("Backlog", JOBS, per_payload=500, severities=("warning",)):
            sender.send(payload)
        submitted_s = time.monotonic() - rig.started
        lot = RedisParkingLot(rig.redis, rig.settings.key_prefix)
        peak_main_mb, peak_mb, peak_held, peak_parked = 0.0, 0.0, 0, 0
        while time.monotonic() < outage_ends:
            main_mb = rss_mb(main)
            peak_main_mb = max(peak_main_mb, main_mb)
            peak_mb = max(peak_mb, main_mb + sum(rss_mb(pid) for pid in children(main)))
            peak_held = max(peak_held, int(rig.redis.hlen("unacked")))
            parked = lot.count()
            peak_parked = max(peak_parked, parked)
            if int(time.monotonic() - rig.started) % 30 == 0:
                print(f"{time.monotonic() - rig.started:.0f} s: {sum(rig.redis.llen(q) for q in QUEUES)} queued, "
                      f"{parked} parked, worker RSS {peak_mb:.0f} MB at most")  # fmt: skip
            time.sleep(1.0)
        target.respond_with(Reply(200))

        books = rig.books(timeout_s=240)
        waiting = sum(rig.redis.llen(q) for q in QUEUES) + lot.count()
        record_books("5 20,000 jobs behind an open breaker", books)
        print(f"submitted in {submitted_s:.1f} s; worker RSS idle {idle_mb:.0f} MB, peak {peak_mb:.0f} MB "
              f"(growth bound {RSS_GROWTH_BOUND_MB} MB); main process idle {idle_main_mb:.0f} MB, peak "
              f"{peak_main_mb:.0f} MB (growth bound {MAIN_GROWTH_BOUND_MB} MB); messages held unacknowledged at most {peak_held}; "
              f"jobs parked at most {peak_parked}; delivered {books.delivered} in {books.seconds:.0f} s, "
              f"{waiting} still queued or parked")  # fmt: skip
        assert books.submitted == JOBS
        # The backlog waited in Redis (parked, or queued behind the worker) and the worker held
        # only short countdowns: its rate times ``park_after_s`` (2 s), far below the backlog.
        assert peak_parked > 0
        assert peak_held <= HELD_BOUND
        assert peak_main_mb - idle_main_mb <= MAIN_GROWTH_BOUND_MB
        assert peak_mb - idle_mb <= RSS_GROWTH_BOUND_MB
        assert books.lost == 0 and books.in_dlq == 0, f"lost: {books.lost_ids[:5]}"
        assert books.delivered == JOBS
        assert books.duplicates_same_id
    finally:
        rig.close()
        target.stop()
