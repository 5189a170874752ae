"""An attempt's settlement on Redis (``RedisAttemptLog.settle``): a firing's leave of the order
gate goes with its tracking update, in the same round trip (docs/design.md (Firing before
resolved))."""

from __future__ import annotations

import pytest
import redis

from publishing.adapters.redis.attempts import RedisAttemptLog
from publishing.adapters.redis.health import RedisTargetHealth
from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.ordering import Gate, GateEntry, GateExit, GateNote
from publishing.priority import Priority
from publishing.target_health import HealthEvent
from publishing.tracking import JobSnapshot, JobState

pytestmark = [pytest.mark.redis]

TARGET, FP = "hook", "fp-1"


def stores(url: str) -> tuple[redis.Redis, RedisJobTracker, RedisTargetHealth, RedisOrderGate]:
    client = redis.Redis.from_url(url)
    tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
    return client, tracker, RedisTargetHealth(client, "t"), RedisOrderGate(client, prefix="t", ttl_s=60)


def resolve_entry() -> GateEntry:
    return GateEntry(TARGET, FP, "resolve", False, 2.0, 1.0, require_fired=True)


def test_a_settled_delivered_firing_has_left_the_gate_and_lets_its_resolve_go(fresh_redis: str) -> None:
    client, tracker, health, gate = stores(fresh_redis)
    tracker.record(JobSnapshot("fire", FP, "A", TARGET, Priority.HIGH, JobState.PROCESSING, submitted_at=1.0))
    gate.note([GateNote(TARGET, FP, "fire", firing=True)])
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 30.0)).gate is Gate.GO
    # On the wire: the resolve waits.
    assert gate.enter(resolve_entry()).gate is Gate.WAIT

    log = RedisAttemptLog(client, tracker, health, gate=gate)
    exits = [GateExit(TARGET, FP, "fire", delivered=True)]
    log.settle("fire", {"state": JobState.SUCCEEDED}, TARGET, [HealthEvent.SUCCESS], 1.0, None, exits=exits)

    snapshot = tracker.get("fire")
    assert snapshot is not None and snapshot.state is JobState.SUCCEEDED
    gate.note([GateNote(TARGET, FP, "resolve", firing=False)])
    assert gate.enter(resolve_entry()).gate is Gate.GO


def test_a_settled_firing_that_was_not_delivered_only_drops_its_lease(fresh_redis: str) -> None:
    client, tracker, health, gate = stores(fresh_redis)
    gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 30.0))
    log = RedisAttemptLog(client, tracker, health, gate=gate)
    log.settle(
        "fire",
        {},
        TARGET,
        [HealthEvent.FAILURE],
        1.0,
        "HTTP 503",
        exits=[GateExit(TARGET, FP, "fire", False)],
    )
    assert gate.enter(resolve_entry()).gate is Gate.SUPERSEDED  # no wait, and never fired


def test_settling_a_leave_without_a_gate_is_refused(fresh_redis: str) -> None:
    client, tracker, health, _ = stores(fresh_redis)
    with pytest.raises(ValueError, match="order gate"):
        RedisAttemptLog(client, tracker, health).settle(
            "fire", {}, TARGET, [], 1.0, None, exits=[GateExit(TARGET, FP, "fire", True)]
        )
