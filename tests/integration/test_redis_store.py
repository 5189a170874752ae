"""The Redis implementations of the breaker, tracking and de-duplication ports, against the
real server: the same contract as the in-memory fakes, plus what only Redis shows
(atomicity across clients, Redis's own clock, expiry)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from publishing.adapters.redis.breaker import RedisBreakerStore
from publishing.adapters.redis.dedup import RedisDeduplicator
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.breaker import Admit, BreakerConfig, BreakerState, Defer, DeferReason, RateLimit, Transition
from publishing.priority import Priority
from publishing.tracking import Claim, ClaimStatus, JobQuery, JobSnapshot, JobState

pytestmark = pytest.mark.redis

CONFIG = BreakerConfig(failure_threshold=3, open_timeout_s=0.3, half_open_probes=1, success_threshold=2)


@pytest.fixture
def client(fresh_redis: str) -> redis.Redis:
    return redis.Redis.from_url(fresh_redis)


@pytest.fixture
def breakers(client: redis.Redis) -> RedisBreakerStore:
    return RedisBreakerStore(client, "t")


def trip(store: RedisBreakerStore, target: str = "pd") -> None:
    for _ in range(CONFIG.failure_threshold):
        store.record_failure(target, CONFIG, None)


def test_consecutive_failures_open_the_breaker_and_a_success_resets_the_count(breakers) -> None:
    assert breakers.acquire("pd", CONFIG, 5) == Admit()
    breakers.record_failure("pd", CONFIG, None)
    breakers.record_failure("pd", CONFIG, None)
    breakers.record_success("pd", CONFIG, None)
    breakers.record_failure("pd", CONFIG, None)
    breakers.record_failure("pd", CONFIG, None)
    assert breakers.status("pd").state is BreakerState.CLOSED
    assert breakers.record_failure("pd", CONFIG, None) is Transition.TRIPPED
    status = breakers.status("pd")
    assert status.state is BreakerState.OPEN
    assert status.trips == 1


def test_an_open_breaker_defers_for_the_rest_of_its_open_time(breakers) -> None:
    trip(breakers)
    decision = breakers.acquire("pd", CONFIG, 5)
    assert isinstance(decision, Defer)
    assert decision.state is BreakerState.OPEN
    assert 0 < decision.wait_s <= CONFIG.open_timeout_s


def test_half_open_admits_exactly_one_probe_across_concurrent_clients(fresh_redis: str, breakers) -> None:
    trip(breakers)
    time.sleep(CONFIG.open_timeout_s + 0.05)
    stores = [RedisBreakerStore(redis.Redis.from_url(fresh_redis), "t") for _ in range(16)]
    with ThreadPoolExecutor(16) as pool:
        decisions = list(pool.map(lambda s: s.acquire("pd", CONFIG, 5), stores))
    admitted = [d for d in decisions if isinstance(d, Admit)]
    assert len(admitted) == 1
    assert admitted[0].probe_id
    assert all(d.state is BreakerState.HALF_OPEN for d in decisions if isinstance(d, Defer))


def test_probe_successes_close_the_breaker(breakers) -> None:
    trip(breakers)
    time.sleep(CONFIG.open_timeout_s + 0.05)
    first = breakers.acquire("pd", CONFIG, 5)
    assert isinstance(first, Admit)
    assert breakers.record_success("pd", CONFIG, first.probe_id) is Transition.NONE
    second = breakers.acquire("pd", CONFIG, 5)
    assert isinstance(second, Admit)
    assert breakers.record_success("pd", CONFIG, second.probe_id) is Transition.RECOVERED
    status = breakers.status("pd")
    assert status.state is BreakerState.CLOSED
    assert status.recoveries == 1
    assert breakers.acquire("pd", CONFIG, 5) == Admit()


def test_a_failed_probe_reopens_the_breaker(breakers) -> None:
    trip(breakers)
    time.sleep(CONFIG.open_timeout_s + 0.05)
    probe = breakers.acquire("pd", CONFIG, 5)
    assert isinstance(probe, Admit)
    assert breakers.record_failure("pd", CONFIG, probe.probe_id) is Transition.TRIPPED
    assert breakers.status("pd").state is BreakerState.OPEN
    assert isinstance(breakers.acquire("pd", CONFIG, 5), Defer)


def test_a_probe_lease_expires_so_a_dead_worker_cannot_wedge_the_breaker(breakers) -> None:
    trip(breakers)
    time.sleep(CONFIG.open_timeout_s + 0.05)
    assert isinstance(breakers.acquire("pd", CONFIG, 0.2), Admit)  # its worker dies here
    assert isinstance(breakers.acquire("pd", CONFIG, 0.2), Defer)
    time.sleep(0.25)
    assert isinstance(breakers.acquire("pd", CONFIG, 0.2), Admit)


def test_release_frees_a_probe_slot_without_a_verdict(breakers) -> None:
    trip(breakers)
    time.sleep(CONFIG.open_timeout_s + 0.05)
    probe = breakers.acquire("pd", CONFIG, 5)
    assert isinstance(probe, Admit)
    breakers.release("pd", probe.probe_id)
    assert isinstance(breakers.acquire("pd", CONFIG, 5), Admit)
    assert breakers.status("pd").state is BreakerState.HALF_OPEN


def test_reset_closes_an_open_breaker_and_breakers_are_per_target(breakers) -> None:
    trip(breakers, "pd")
    assert breakers.acquire("slack", CONFIG, 5) == Admit()
    breakers.reset("pd")
    assert breakers.status("pd").state is BreakerState.CLOSED
    assert breakers.acquire("pd", CONFIG, 5) == Admit()


def test_the_breaker_survives_a_script_cache_flush(client, breakers) -> None:
    client.script_flush()
    trip(breakers)
    assert breakers.status("pd").state is BreakerState.OPEN


def snapshot(job_id: str, at: float, **fields: object) -> JobSnapshot:
    values: dict[str, object] = {
        "id": job_id,
        "fingerprint": "fp" + job_id,
        "alert_name": "A",
        "target": "pd",
        "priority": Priority.HIGH,
        "state": JobState.QUEUED,
        "submitted_at": at,
    }
    values.update(fields)
    return JobSnapshot(**values)  # type: ignore[arg-type]


def test_tracking_records_updates_and_lists_newest_first_with_filters(client) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=100, ttl_s=60)
    tracker.record(snapshot("a", 1.0))
    tracker.record(snapshot("b", 2.0, target="slack", priority=Priority.LOW))
    tracker.record(snapshot("c", 3.0))
    tracker.update("a", state=JobState.SUCCEEDED, completed_at=5.0)
    tracker.update("c", state=JobState.RETRYING, retry_count=1, error_type="transient", last_error="HTTP 503")

    assert tracker.get("a").state is JobState.SUCCEEDED
    assert tracker.get("c").retry_count == 1
    jobs, total = tracker.list(JobQuery())
    assert [j.id for j in jobs] == ["c", "b", "a"]
    assert total == 3
    jobs, total = tracker.list(JobQuery(target="pd", limit=1))
    assert [j.id for j in jobs] == ["c"]
    assert total == 2
    assert [j.id for j in tracker.list(JobQuery(state=JobState.SUCCEEDED))[0]] == ["a"]
    assert [j.id for j in tracker.list(JobQuery(priority=Priority.LOW))[0]] == ["b"]
    assert tracker.count_by_state()["retrying"] == 1


def test_tracking_is_capped_oldest_first_and_expires(client) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=3, ttl_s=60)
    for i in range(5):
        tracker.record(snapshot(f"j{i}", float(i + 1)))
    jobs, total = tracker.list(JobQuery())
    assert [j.id for j in jobs] == ["j4", "j3", "j2"]
    assert total == 3
    assert tracker.get("j0") is None
    assert not client.exists("t:job:j0")
    assert 0 < client.ttl("t:job:j4") <= 60


def test_tracking_update_of_an_unknown_job_creates_nothing(client) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=3, ttl_s=60)
    tracker.update("ghost", state=JobState.SUCCEEDED)
    assert tracker.get("ghost") is None


def test_mark_started_counts_redeliveries_of_the_same_attempt(client) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=3, ttl_s=60)
    tracker.record(snapshot("a", 1.0))
    assert tracker.mark_started("a", "0.0.0", 10.0) == 1
    assert tracker.mark_started("a", "0.0.0", 11.0) == 2
    assert tracker.mark_started("a", "1.0.0", 12.0) == 1
    job = tracker.get("a")
    assert job.state is JobState.PROCESSING
    assert job.started_at == 12.0


def test_a_claim_is_pending_until_enqueued_then_a_duplicate_within_the_window(client) -> None:
    dedup = RedisDeduplicator(client, "t")
    (first,) = dedup.claim_many([("k", "job-1")], 0.5, grace_s=5)
    assert first == Claim(ClaimStatus.NEW, "job-1")
    assert dedup.claim_many([("k", "job-2")], 0.5, 5) == [Claim(ClaimStatus.PENDING, "job-1")]
    dedup.mark_enqueued([("k", "job-1")])
    assert dedup.claim_many([("k", "job-2")], 0.5, 5) == [Claim(ClaimStatus.DUPLICATE, "job-1")]
    time.sleep(0.55)
    assert dedup.claim_many([("k", "job-3")], 0.5, 5) == [Claim(ClaimStatus.NEW, "job-3")]


def test_a_pending_claim_past_the_grace_period_is_taken_over_with_its_job_id(client) -> None:
    dedup = RedisDeduplicator(client, "t")
    dedup.claim_many([("k", "job-1")], 10, 0.2)  # its request dies before enqueueing
    time.sleep(0.25)
    assert dedup.claim_many([("k", "job-2")], 10, 0.2) == [Claim(ClaimStatus.TAKEN_OVER, "job-1")]
    assert dedup.claim_many([("k", "job-3")], 10, 0.2) == [Claim(ClaimStatus.PENDING, "job-1")]


def test_release_drops_only_the_callers_own_pending_claim(client) -> None:
    dedup = RedisDeduplicator(client, "t")
    dedup.claim_many([("k", "job-1"), ("e", "job-9")], 10, 5)
    dedup.mark_enqueued([("e", "job-9")])
    dedup.release_many([("k", "someone-else"), ("e", "job-9")])
    assert dedup.claim_many([("k", "job-2"), ("e", "job-2")], 10, 5) == [
        Claim(ClaimStatus.PENDING, "job-1"),
        Claim(ClaimStatus.DUPLICATE, "job-9"),
    ]
    dedup.release_many([("k", "job-1")])
    assert dedup.claim_many([("k", "job-2")], 10, 5) == [Claim(ClaimStatus.NEW, "job-2")]


def test_the_rate_limit_spaces_attempts_and_takes_no_token_when_deferred(breakers) -> None:
    rate = RateLimit(interval_s=0.2)
    assert breakers.acquire("pd", CONFIG, 5, rate) == Admit()
    second = breakers.acquire("pd", CONFIG, 5, rate)
    assert isinstance(second, Defer)
    assert second.reason is DeferReason.RATE_LIMITED
    assert 0.1 < second.wait_s <= 0.2
    time.sleep(second.wait_s + 0.01)
    assert breakers.acquire("pd", CONFIG, 5, rate) == Admit()


def test_a_pause_defers_every_attempt_and_reset_lifts_it(breakers) -> None:
    breakers.pause("pd", 5)
    decision = breakers.acquire("pd", CONFIG, 5)
    assert isinstance(decision, Defer)
    assert decision.reason is DeferReason.PAUSED
    assert 4 < decision.wait_s <= 5
    breakers.pause("pd", 1)  # a shorter pause never shortens a longer one
    assert breakers.acquire("pd", CONFIG, 5).wait_s > 4  # type: ignore[union-attr]
    breakers.reset("pd")
    assert breakers.acquire("pd", CONFIG, 5) == Admit()


def test_pipelined_scripts_survive_a_script_cache_flush(client) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=10, ttl_s=60)
    dedup = RedisDeduplicator(client, "t")
    client.script_flush()  # as after a Redis restart
    tracker.record_many([snapshot("a", 1.0), snapshot("b", 2.0)])
    assert [j.id for j in tracker.list(JobQuery())[0]] == ["b", "a"]
    client.script_flush()
    assert dedup.claim_many([("k", "job-1")], 10, 5) == [Claim(ClaimStatus.NEW, "job-1")]
