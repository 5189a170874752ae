"""What only the Redis adapters show, against the real server: atomicity across clients,
scripts surviving a script-cache flush, pipelines, key TTLs and cleanup, cluster hash tags,
and the Lua files themselves. The behaviour they share with the in-memory fakes is held by
``tests/contract``."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from bench.counting import script_names
from publishing.adapters.redis.breaker import RedisBreakerStore
from publishing.adapters.redis.client import (
    load_script,
    run_pipeline,
    script_stems,
    script_text,
    writes_together,
)
from publishing.adapters.redis.dedup import RedisDeduplicator
from publishing.adapters.redis.health import RedisTargetHealth
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.breaker import Admit, BreakerConfig, BreakerState, Defer, DeferReason, RateLimit
from publishing.priority import Priority
from publishing.target_health import HealthEvent
from publishing.tracking import Claim, ClaimStatus, JobQuery, JobSnapshot, JobState

pytestmark = pytest.mark.redis

CONFIG = BreakerConfig(failure_threshold=3, open_timeout_s=0.3, half_open_probes=1, success_threshold=2)
TTL_S = 60


@pytest.fixture
def client(fresh_redis: str) -> redis.Redis:
    return redis.Redis.from_url(fresh_redis)


@pytest.fixture
def breakers(client: redis.Redis) -> RedisBreakerStore:
    return RedisBreakerStore(client, "t")


@pytest.fixture
def tracker(client: redis.Redis) -> RedisJobTracker:
    return RedisJobTracker(client, prefix="t", capacity=100, ttl_s=TTL_S)


def trip(store: RedisBreakerStore, target: str = "pd") -> None:
    for _ in range(CONFIG.failure_threshold):
        store.record_failure(target, CONFIG, None)


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


def index_members(client: redis.Redis) -> dict[str, set[str]]:
    """Every tracking index key and its members."""
    keys = [k.decode() for k in client.keys("t:jobs*") if client.type(k) == b"zset"]
    return {k: {m.decode() for m in client.zrange(k, 0, -1)} for k in keys}


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


class _InterleavingRedis(redis.Redis):
    """A client after whose first round trip another worker's pause lands: between a read of
    the pause's TTL and the write that follows it, were the two separate."""

    other: RedisBreakerStore | None = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)
        finally:
            other, self.other = self.other, None
            if other is not None:
                other.pause("pd", 10)


def test_a_concurrent_longer_pause_is_never_cut_short(fresh_redis: str) -> None:
    slow = _InterleavingRedis.from_url(fresh_redis)
    slow.other = RedisBreakerStore(redis.Redis.from_url(fresh_redis), "t")
    RedisBreakerStore(slow, "t").pause("pd", 1)
    decision = RedisBreakerStore(redis.Redis.from_url(fresh_redis), "t").acquire("pd", CONFIG, 5)
    assert isinstance(decision, Defer)
    assert decision.reason is DeferReason.PAUSED
    assert decision.wait_s > 9


def test_concurrent_pauses_leave_the_longest(fresh_redis: str) -> None:
    stores = [RedisBreakerStore(redis.Redis.from_url(fresh_redis), "t") for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: stores[i].pause("pd", 1 + i), range(8)))
    assert 7.5 < redis.Redis.from_url(fresh_redis).pttl("t:breaker:{pd}:pause") / 1000 <= 8


def test_every_key_of_a_target_lives_in_one_cluster_slot(client, breakers) -> None:
    trip(breakers)
    time.sleep(CONFIG.open_timeout_s + 0.05)
    assert isinstance(breakers.acquire("pd", CONFIG, 5, RateLimit(interval_s=1)), Admit)  # a probe
    breakers.pause("pd", 5)
    RedisTargetHealth(client, "t").record("pd", [HealthEvent.TRIPPED], 1.0)
    keys = client.keys("t:breaker:*") + client.keys("t:health:*")
    assert len(keys) == 6
    assert {key_slot(k) for k in keys} == {key_slot(b"{pd}")}


def test_scripts_survive_a_script_cache_flush(client, breakers, tracker) -> None:
    client.script_flush()  # as after a Redis restart
    trip(breakers)
    assert breakers.status("pd").state is BreakerState.OPEN
    client.script_flush()
    tracker.record_many([snapshot("a", 1.0), snapshot("b", 2.0)])
    assert [j.id for j in tracker.list(JobQuery())[0]] == ["b", "a"]
    client.script_flush()
    assert RedisDeduplicator(client, "t").claim_many([("k", "job-1")], 10, 5) == [
        Claim(ClaimStatus.NEW, "job-1")
    ]


def test_a_tracking_update_and_a_health_record_share_one_pipeline(client, tracker) -> None:
    health = RedisTargetHealth(client, "t")
    tracker.record(snapshot("a", 1.0))
    client.script_flush()

    def build(pipe: Any) -> None:
        tracker.update("a", client=pipe, state=JobState.SUCCEEDED)
        health.record("pd", [HealthEvent.SUCCESS], 5.0, client=pipe)

    run_pipeline(client, build, tracker.scripts + health.scripts)
    assert tracker.get("a").state is JobState.SUCCEEDED
    assert tracker.count_by_state()["succeeded"] == 1
    assert health.get("pd").last_success_at == 5.0


def test_tracked_jobs_expire_and_evicted_jobs_leave_no_key_behind(client) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=3, ttl_s=TTL_S)
    for i in range(5):
        tracker.record(snapshot(f"j{i}", float(i + 1)))
        tracker.mark_started(f"j{i}", "0.0.0", float(i + 1))
    assert not client.exists("t:job:j0", "t:starts:j0", "t:job:j1", "t:starts:j1")
    assert 0 < client.ttl("t:job:j4") <= TTL_S
    assert all(members <= {"j2", "j3", "j4"} for members in index_members(client).values())


def test_a_start_of_an_untracked_job_creates_nothing_lasting_or_visible(client, tracker) -> None:
    assert [tracker.mark_started("ghost", "0.0.0", 10.0) for _ in range(3)] == [1, 2, 3]
    assert tracker.get("ghost") is None
    assert tracker.list(JobQuery()) == ([], 0)
    assert not client.exists("t:job:ghost")
    for key in client.keys("*"):
        if key != b"publishing-tests:lock":
            assert 0 < client.pttl(key) <= TTL_S * 1000, key


def test_a_start_counter_expires_with_the_trackers_ttl(client, tracker) -> None:
    tracker.record(snapshot("a", 1.0))
    assert tracker.mark_started("a", "0.0.0", 10.0) == 1
    assert 0 < client.pttl("t:starts:a") <= TTL_S * 1000
    assert 0 < client.pttl("t:job:a") <= TTL_S * 1000


def test_index_entries_outliving_their_expired_hash_are_dropped_by_the_next_page(client, tracker) -> None:
    tracker.record_many([snapshot(f"j{i}", float(i), state=JobState.FAILED) for i in range(6)])
    client.delete("t:job:j5", "t:job:j3")  # as if their TTL ran out
    jobs, total = tracker.list(JobQuery(state=JobState.FAILED, limit=3))
    assert [j.id for j in jobs] == ["j4", "j2", "j1"]
    assert total == 4
    jobs, total = tracker.list(JobQuery(limit=10))
    assert [j.id for j in jobs] == ["j4", "j2", "j1", "j0"]
    assert total == 4
    assert all("j5" not in m and "j3" not in m for m in index_members(client).values())
    assert tracker.count_by_state()["failed"] == 4


def test_a_filtered_walk_drops_entries_of_expired_hashes(client, tracker) -> None:
    tracker.record_many([snapshot(f"j{i}", float(i)) for i in range(4)])
    client.delete("t:job:j2")
    jobs, _ = tracker.list(JobQuery(target="pd", priority=Priority.HIGH))
    assert [j.id for j in jobs] == ["j3", "j1", "j0"]
    assert all("j2" not in m for m in index_members(client).values())


def test_index_entries_older_than_the_ttl_are_trimmed_from_every_index(client, tracker) -> None:
    tracker.record(snapshot("old", 1000.0, target="slack"))
    tracker.record(snapshot("new", 1000.0 + TTL_S + 1))
    assert all(members == {"new"} for members in index_members(client).values() if members)
    assert tracker.count_by_state()["queued"] == 1


def count_commands(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Commands sent through ``client`` from now on, one entry a round trip (a pipeline's
    entry is its length)."""
    sent: list[int] = []
    single, pipeline = client.execute_command, client.pipeline

    def execute_command(*args: Any, **options: Any) -> Any:
        sent.append(1)
        return single(*args, **options)

    def counted_pipeline(*args: Any, **options: Any) -> Any:
        pipe = pipeline(*args, **options)
        execute = pipe.execute

        def counted_execute(*a: Any, **k: Any) -> Any:
            sent.append(len(pipe.command_stack))
            return execute(*a, **k)

        pipe.execute = counted_execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(client, "execute_command", execute_command)
    monkeypatch.setattr(client, "pipeline", counted_pipeline)
    return sent


def test_a_page_and_the_counts_cost_what_they_return_not_what_is_tracked(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = RedisJobTracker(client, prefix="t", capacity=5000, ttl_s=TTL_S)
    states = [JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED]
    tracker.record_many(
        [snapshot(f"j{i}", i / 100, state=states[i % 3], target=f"t{i % 4}") for i in range(3000)]
    )
    sent = count_commands(client, monkeypatch)
    jobs, total = tracker.list(JobQuery(state=JobState.FAILED, limit=5))
    assert ([j.id for j in jobs], total) == (["j2999", "j2996", "j2993", "j2990", "j2987"], 1000)
    assert tracker.count_by_state()["failed"] == 1000
    jobs, total = tracker.list(JobQuery(state=JobState.FAILED, target="t3", limit=5))
    assert ([j.id for j in jobs], total) == (["j2999", "j2987", "j2975", "j2963", "j2951"], 250)
    assert sum(sent) < 250  # the walk reads one chunk of the smaller index


def test_a_redis_without_zintercard_counts_a_filtered_list_by_walking(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown_command(*_: Any, **__: Any) -> None:
        raise ResponseError("ERR unknown command 'ZINTERCARD'")

    monkeypatch.setattr(client, "zintercard", unknown_command)
    tracker = RedisJobTracker(client, prefix="t", capacity=1000, ttl_s=TTL_S)
    # Submitted within the TTL of each other, so none is trimmed.
    tracker.record_many([snapshot(f"j{i}", i / 100, target="slack" if i % 2 else "pd") for i in range(450)])
    jobs, total = tracker.list(JobQuery(target="pd", priority=Priority.HIGH, limit=2))
    assert [j.id for j in jobs] == ["j448", "j446"]
    assert total == 225


def test_every_script_names_its_keys_and_arguments_before_using_them() -> None:
    assert len(script_stems()) >= 14
    for name in script_stems():
        lines = script_text(name).splitlines()
        assert lines[0].startswith("--"), name
        for line in lines:
            if re.search(r"\b(KEYS|ARGV)\[", line):
                declared = re.match(r"\s*local \w+ = (tonumber\()?(KEYS|ARGV)\[\d+\]\)?", line)
                loop = re.search(r"for \w+ = \w+, #ARGV", line)
                # Trailing variadic arguments are read from a documented start index.
                variadic = re.search(r"ARGV\[i( \+ 1)?\]", line)
                assert declared or loop or variadic, f"{name}: {line.strip()}"


def test_bench_names_each_evalsha_by_its_script_file(client) -> None:
    names = script_names()
    for name in script_stems():
        assert names[load_script(client, name).sha[:8]] == name


def test_a_submission_tracks_its_jobs_and_notes_their_order_in_one_round_trip(
    fresh_redis: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a request's jobs are enqueued, their tracking entries and their order notes
    reach Redis together: one round trip fewer between the API stamping a job and a worker
    being able to take it (docs/design.md (Firing before resolved))."""
    from publishing.adapters.composition import build_services
    from publishing.alert import parse_alertmanager
    from publishing.settings import Settings

    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n- name: hook\n  type: webhook\n  url: http://127.0.0.1:9/hook\n")
    services = build_services(
        Settings.from_env(
            {
                "REDIS_URL": fresh_redis,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'dlq.db'}",
                "PUBLISHING_TARGETS": str(targets),
            }
        )
    )
    names = script_names()
    pipelines: list[list[str]] = []
    pipeline = services.redis.pipeline

    def recorded_pipeline(*args: Any, **options: Any) -> Any:
        pipe = pipeline(*args, **options)
        execute = pipe.execute

        def recorded_execute(*a: Any, **k: Any) -> Any:
            pipelines.append(
                [
                    names.get(str(c[0][1])[:8], "?") if c[0][0] == "EVALSHA" else str(c[0][0])
                    for c in pipe.command_stack
                ]
            )
            return execute(*a, **k)

        pipe.execute = recorded_execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(services.redis, "pipeline", recorded_pipeline)
    raw = {"status": "firing", "labels": {"alertname": "A", "severity": "critical"}, "annotations": {},
           "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": ""}  # fmt: skip
    payload = {"version": "4", "status": "firing", "alerts": [raw, {**raw, "labels": {"alertname": "B"}}]}
    result = services.submitter.submit(parse_alertmanager(payload))

    assert len(result.created) == 2
    # Every pipeline that carried either carried both (sent again whole, once, when Redis had
    # not loaded the scripts yet).
    together = {tuple(p) for p in pipelines if "tracking_record" in p or "order_note" in p}
    assert together == {("order_note", "order_note", "tracking_record", "tracking_record")}
    for job in result.created:
        assert services.tracker.get(job.id) is not None


def test_writes_held_together_are_not_sent_when_the_block_raises(client, tracker) -> None:
    with pytest.raises(RuntimeError), writes_together(client):
        tracker.record(snapshot("a", 1.0))
        assert tracker.get("a") is None  # held: a read inside the block does not see it
        raise RuntimeError("the request failed before its jobs were enqueued")
    assert tracker.get("a") is None
    tracker.record(snapshot("b", 2.0))
    assert tracker.get("b") is not None


def test_a_held_write_that_redis_refuses_raises_as_the_block_ends(client, tracker) -> None:
    client.set("t:jobs", "not an index")  # every record ZADDs the tracking index
    with pytest.raises(ResponseError, match="WRONGTYPE"), writes_together(client):
        tracker.record(snapshot("a", 1.0))
