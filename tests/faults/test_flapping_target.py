"""A target that flaps (up 5 s, down 5 s) for a minute under load (docs/design.md (Circuit breaker)): the fleet-wide
breaker opens and closes again each cycle, no job is dropped, and half-open probes never
overlap: each request is tagged, on arrival, with the breaker's state in Redis, and no other
request is in flight at the target while one sent in the half-open state is."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from publishing.adapters.redis.breaker import RedisBreakerStore
from publishing.breaker import BreakerState
from tests.faults.rig import Rig, payloads
from tests.support.alert_api import Background
from tests.support.fault_target import FaultTarget, Flapping, Hit
from tests.support.http_target import Reply

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

FLAP_FOR_S = 60.0
UP = Reply(200, delay_s=0.05)
# A slow 503: two probes let through at once would overlap for 0.3 s at the target.
DOWN = Reply(503, body='{"error":"unavailable"}', delay_s=0.3)


def _overlapping(probe: Hit, hits: list[Hit]) -> list[Hit]:
    end = probe.done if probe.done is not None else float("inf")
    return [
        h
        for h in hits
        if h is not probe and h.at < end and (h.done if h.done is not None else float("inf")) > probe.at
    ]


def test_a_flapping_target_trips_and_recovers_the_breaker_probing_one_at_a_time(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    flapping = Flapping(UP, DOWN, up_s=5, down_s=5)
    breakers_key = "publishing:breaker:{flappy}"
    target = FaultTarget("flappy", flapping)
    rig = Rig(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        [target],
        PUBLISHING_MAX_RETRIES="12",
        PUBLISHING_BREAKER_OPEN_TIMEOUT_S="1",
        PUBLISHING_BREAKER_FAILURE_THRESHOLD="5",
        PUBLISHING_BREAKER_SUCCESS_THRESHOLD="2",
        PUBLISHING_BREAKER_HALF_OPEN_PROBES="1",
    )
    target.tag_with(lambda: (rig.redis.hget(breakers_key, "state") or b"closed").decode())
    try:
        rig.fleet.start("w1", concurrency=3)
        rig.fleet.start("w2", concurrency=3)
        sender = rig.start_api()
        flapping.start = time.monotonic()
        load = Background(
            sender, payloads("Flap", 300, severities=("critical", "warning", "info")), threads=1, pace_s=0.85
        )
        load.join(FLAP_FOR_S + 30)
        time.sleep(max(0.0, FLAP_FOR_S - (time.monotonic() - flapping.start)))
        target.respond_with(UP)

        books = rig.books(timeout_s=60)
        record_books("5 flapping target (60 s)", books)
        status = RedisBreakerStore(rig.redis).status("flappy")
        hits = target.snapshot()
        probes = [h for h in hits if h.tag == "half_open"]
        overlaps = {id(p): _overlapping(p, hits) for p in probes}
        print(
            f"breaker trips={status.trips} recoveries={status.recoveries}; requests={len(hits)}, "
            f"half-open probes={len(probes)}, max in flight={target.max_in_flight}"
        )
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
        assert books.submitted == 300
        assert status.trips >= 3 and status.recoveries >= 3
        assert status.state is BreakerState.CLOSED
        assert probes, "no request was sent while half-open"
        assert not any(overlaps.values()), (
            f"{sum(1 for o in overlaps.values() if o)} half-open probes overlapped another request"
        )
    finally:
        rig.close()
        target.stop()
