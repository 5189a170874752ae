"""Job tracking (``publishing.tracking.JobTracker``): the in-memory tracker and the Redis one
record, update, evict, list and count alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.priority import Priority
from publishing.testing import InMemoryJobTracker
from publishing.tracking import JobQuery, JobSnapshot, JobState, JobTracker
from tests.contract.conftest import Backend

MakeTracker = Callable[..., JobTracker]


@pytest.fixture
def make_tracker(backend: Backend) -> MakeTracker:
    def make(capacity: int = 100) -> JobTracker:
        if backend.is_redis:
            return RedisJobTracker(backend.redis, prefix="t", capacity=capacity, ttl_s=60)
        return InMemoryJobTracker(capacity=capacity)

    return make


@pytest.fixture
def tracker(make_tracker: MakeTracker) -> JobTracker:
    return make_tracker()


def snapshot(job_id: str, at: float, **fields: object) -> JobSnapshot:
    values: dict[str, object] = {
        "id": job_id,
        "fingerprint": "fp-" + job_id,
        "alert_name": "DiskFull",
        "target": "pd",
        "priority": Priority.HIGH,
        "state": JobState.QUEUED,
        "submitted_at": at,
    }
    values.update(fields)
    return JobSnapshot(**values)  # type: ignore[arg-type]


def ids(page: tuple[list[JobSnapshot], int]) -> tuple[list[str], int]:
    jobs, total = page
    return [job.id for job in jobs], total


def only(counts: dict[str, int]) -> dict[str, int]:
    assert set(counts) == {state.value for state in JobState}
    return {state: n for state, n in counts.items() if n}


def test_a_recorded_job_reads_back_as_recorded(tracker) -> None:
    job = snapshot(
        "a",
        1_700_000_000.25,
        retry_count=2,
        error_type="transient",
        last_error="HTTP 503",
        started_at=1_700_000_001.5,
        delivered_via="pd-backup",
    )
    tracker.record(job)
    assert tracker.get("a") == job
    assert tracker.get("never-recorded") is None


def test_recording_again_replaces_the_entry_and_its_indices(tracker) -> None:
    tracker.record(snapshot("a", 1.0, retry_count=3))
    tracker.record(snapshot("a", 1.0, state=JobState.SUCCEEDED, target="slack"))
    assert tracker.get("a") == snapshot("a", 1.0, state=JobState.SUCCEEDED, target="slack")
    assert ids(tracker.list(JobQuery(target="pd"))) == ([], 0)
    assert ids(tracker.list(JobQuery(target="slack"))) == (["a"], 1)
    assert only(tracker.count_by_state()) == {"succeeded": 1}


def test_update_changes_a_tracked_job_and_leaves_an_untracked_one_untracked(tracker) -> None:
    tracker.record(snapshot("a", 1.0))
    tracker.update("a", state=JobState.RETRYING, retry_count=1, error_type="transient", last_error="503")
    tracker.update("ghost", state=JobState.SUCCEEDED)
    assert tracker.get("a") == snapshot(
        "a", 1.0, state=JobState.RETRYING, retry_count=1, error_type="transient", last_error="503"
    )
    assert tracker.get("ghost") is None
    assert ids(tracker.list(JobQuery())) == (["a"], 1)
    assert only(tracker.count_by_state()) == {"retrying": 1}


def test_update_with_none_clears_a_field_and_rejects_unknown_fields(tracker) -> None:
    tracker.record(snapshot("a", 1.0, last_error="boom"))
    tracker.update("a", last_error=None)
    assert tracker.get("a").last_error is None
    with pytest.raises(ValueError, match="colour"):
        tracker.update("a", colour="red")


def test_the_oldest_jobs_are_evicted_beyond_capacity(make_tracker) -> None:
    tracker = make_tracker(capacity=3)
    tracker.record_many([snapshot(f"j{i}", float(i + 1)) for i in range(3)])
    tracker.update("j0", state=JobState.FAILED)
    tracker.record(snapshot("j3", 4.0))
    tracker.record(snapshot("j4", 5.0, state=JobState.DLQ))
    assert ids(tracker.list(JobQuery())) == (["j4", "j3", "j2"], 3)
    assert tracker.get("j0") is None
    assert ids(tracker.list(JobQuery(state=JobState.FAILED))) == ([], 0)
    assert ids(tracker.list(JobQuery(target="pd"))) == (["j4", "j3", "j2"], 3)
    assert only(tracker.count_by_state()) == {"queued": 2, "dlq": 1}


def test_list_is_newest_first_by_submission_time_whatever_the_recording_order(tracker) -> None:
    tracker.record_many([snapshot("b", 2.0), snapshot("c", 3.0), snapshot("a", 1.0)])
    assert ids(tracker.list(JobQuery())) == (["c", "b", "a"], 3)
    assert ids(tracker.list(JobQuery(limit=2))) == (["c", "b"], 3)


@pytest.fixture
def mixed(tracker: JobTracker) -> JobTracker:
    """Eight jobs over two targets, three priorities and three states."""
    rows = [
        ("j1", "pd", Priority.HIGH, JobState.SUCCEEDED),
        ("j2", "slack", Priority.LOW, JobState.QUEUED),
        ("j3", "pd", Priority.MEDIUM, JobState.QUEUED),
        ("j4", "pd", Priority.HIGH, JobState.QUEUED),
        ("j5", "slack", Priority.HIGH, JobState.FAILED),
        ("j6", "pd", Priority.HIGH, JobState.SUCCEEDED),
        ("j7", "slack", Priority.LOW, JobState.SUCCEEDED),
        ("j8", "pd", Priority.HIGH, JobState.QUEUED),
    ]
    tracker.record_many([snapshot(j, float(i), target=t, priority=p) for i, (j, t, p, _) in enumerate(rows)])
    for job_id, _, _, state in rows:
        if state is not JobState.QUEUED:
            tracker.update(job_id, state=state)
    return tracker


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(JobQuery(), (["j8", "j7", "j6", "j5", "j4", "j3", "j2", "j1"], 8), id="all"),
        pytest.param(JobQuery(state=JobState.QUEUED), (["j8", "j4", "j3", "j2"], 4), id="state"),
        pytest.param(JobQuery(target="slack"), (["j7", "j5", "j2"], 3), id="target"),
        pytest.param(JobQuery(priority=Priority.HIGH), (["j8", "j6", "j5", "j4", "j1"], 5), id="priority"),
        pytest.param(JobQuery(priority=Priority.HIGH, limit=2), (["j8", "j6"], 5), id="priority-page"),
        pytest.param(
            JobQuery(state=JobState.SUCCEEDED, target="pd"), (["j6", "j1"], 2), id="state-and-target"
        ),
        pytest.param(
            JobQuery(state=JobState.QUEUED, priority=Priority.HIGH, limit=1),
            (["j8"], 2),
            id="state-and-priority-page",
        ),
        pytest.param(
            JobQuery(target="slack", priority=Priority.LOW), (["j7", "j2"], 2), id="target-and-priority"
        ),
        pytest.param(
            JobQuery(state=JobState.SUCCEEDED, priority=Priority.HIGH, target="pd"),
            (["j6", "j1"], 2),
            id="all-three",
        ),
        pytest.param(JobQuery(state=JobState.DLQ), ([], 0), id="no-match"),
        pytest.param(JobQuery(target="slack", state=JobState.PROCESSING), ([], 0), id="no-match-two"),
    ],
)
def test_list_filters_and_counts_every_match(mixed, query: JobQuery, expected) -> None:
    assert ids(mixed.list(query)) == expected


def test_count_by_state_follows_updates(mixed) -> None:
    assert only(mixed.count_by_state()) == {"queued": 4, "succeeded": 3, "failed": 1}
    mixed.update("j2", state=JobState.PROCESSING)
    mixed.update("j5", state=JobState.DLQ)
    mixed.update("j8", retry_count=1)  # no state: stays where it is
    assert only(mixed.count_by_state()) == {"queued": 3, "processing": 1, "succeeded": 3, "dlq": 1}
    assert ids(mixed.list(JobQuery(state=JobState.FAILED))) == ([], 0)
    assert ids(mixed.list(JobQuery(state=JobState.DLQ, target="slack"))) == (["j5"], 1)


def test_mark_started_counts_starts_of_each_attempt_and_marks_the_job_processing(tracker) -> None:
    tracker.record(snapshot("a", 1.0))
    assert [tracker.mark_started("a", "0.0.0", 10.0 + i) for i in range(3)] == [1, 2, 3]
    assert tracker.mark_started("a", "1.0.0", 20.0) == 1
    job = tracker.get("a")
    assert (job.state, job.started_at) == (JobState.PROCESSING, 20.0)
    assert ids(tracker.list(JobQuery(state=JobState.PROCESSING))) == (["a"], 1)
    assert only(tracker.count_by_state()) == {"processing": 1}


def test_mark_started_counts_an_untracked_job_without_tracking_it(tracker) -> None:
    assert [tracker.mark_started("ghost", "0.0.0", 10.0) for _ in range(3)] == [1, 2, 3]
    assert tracker.get("ghost") is None
    assert ids(tracker.list(JobQuery())) == ([], 0)
    assert ids(tracker.list(JobQuery(state=JobState.PROCESSING))) == ([], 0)
    assert only(tracker.count_by_state()) == {}


# --- the message kept with a job, for the reconciler (docs/design.md (Reconciler)) ---

MESSAGE = {"job_id": "m", "target": "pd", "priority": "high", "alert": {"alert": {"labels": {"a": "ü"}}}}


def test_a_job_recorded_with_its_message_reads_it_back(tracker) -> None:
    tracker.record_many([snapshot("m", 1.0), snapshot("n", 2.0)], {"m": MESSAGE})
    assert tracker.message("m") == MESSAGE
    assert tracker.message("n") is None
    assert tracker.message("ghost") is None


def test_a_retry_replaces_the_message_and_a_finished_job_keeps_none(tracker) -> None:
    tracker.record_many([snapshot("m", 1.0)], {"m": MESSAGE})
    retried = {**MESSAGE, "retries": 1}
    tracker.update("m", state=JobState.RETRYING, message=retried, wait_s=2.5)
    assert tracker.message("m") == retried
    assert tracker.get("m").state is JobState.RETRYING
    tracker.update("m", state=JobState.SUCCEEDED, message=None)
    assert tracker.message("m") is None
    assert tracker.get("m").state is JobState.SUCCEEDED


def test_the_message_never_shows_in_a_snapshot(tracker) -> None:
    tracker.record_many([snapshot("m", 1.0)], {"m": MESSAGE})
    (job,), _ = tracker.list(JobQuery())
    assert "message" not in job.to_dict()
    assert job == tracker.get("m")


@pytest.mark.redis
def test_redis_keeps_when_each_entry_last_changed_on_its_own_clock(backend) -> None:
    if not backend.is_redis:
        pytest.skip("the in-memory tracker keeps no time")
    tracker = RedisJobTracker(backend.redis, prefix="t", capacity=100, ttl_s=60)
    tracker.record_many([snapshot("m", 1.0), snapshot("d", 2.0)], {"m": MESSAGE})
    tracker.update("d", state=JobState.DEFERRED, wait_s=3)
    seconds, micros = backend.redis.time()
    now = seconds + micros / 1e6
    entries = {e["id"]: e for e in tracker.entries_in([JobState.QUEUED, JobState.DEFERRED])}
    assert set(entries) == {"m", "d"}
    assert entries["m"]["has_message"] and not entries["d"]["has_message"]
    assert entries["d"]["wait_s"] == "3"
    assert all(abs(now - float(e["updated_at"])) < 1 for e in entries.values())
    assert tracker.tracked(["m", "ghost"]) == {"m"}
