"""Submission: fan-out to matching targets, de-duplication within the window, and what a
failed enqueue leaves behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from publishing.alert import parse_alertmanager
from publishing.submission import Submitter, dedup_key
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryDeduplicator, InMemoryJobTracker, RecordingEnqueuer
from publishing.tracking import JobQuery, JobState

TARGETS = [
    {"name": "all", "type": "webhook", "url": "http://a.example/"},
    {
        "name": "critical-only",
        "type": "webhook",
        "url": "http://c.example/",
        "filter": {"severity": ["critical"]},
    },
]


def alerts(*names_and_severities: tuple[str, str]):  # type: ignore[no-untyped-def]
    raw = [
        {"status": "firing", "labels": {"alertname": n, "severity": s}, "startsAt": "2026-01-01T00:00:00Z"}
        for n, s in names_and_severities
    ]
    return parse_alertmanager({"alerts": raw})


class Setup:
    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.tracker = InMemoryJobTracker()
        self.dedup = InMemoryDeduplicator(self.clock)
        self.enqueuer = RecordingEnqueuer()
        self.submitter = Submitter(
            TargetRegistry(parse_target(t) for t in TARGETS),
            self.tracker,
            self.dedup,
            self.enqueuer,
            dedup_window_s=300,
            clock=self.clock,
        )


def test_each_alert_becomes_one_job_a_matching_target() -> None:
    s = Setup()
    result = s.submitter.submit(alerts(("Disk", "critical"), ("Cpu", "warning")))
    assert sorted((j.target, j.priority.value) for j in result.jobs) == [
        ("all", "high"),
        ("all", "medium"),
        ("critical-only", "high"),
    ]
    assert len(s.enqueuer.sent) == 3
    assert all(s.tracker.get(j.id).state is JobState.QUEUED for j in result.jobs)


def test_the_same_alert_again_within_the_window_is_answered_with_the_same_ids() -> None:
    s = Setup()
    first = s.submitter.submit(alerts(("Disk", "critical")))
    s.clock.advance(299)
    second = s.submitter.submit(alerts(("Disk", "critical")))
    assert [j.id for j in second.jobs] == [j.id for j in first.jobs]
    assert all(j.duplicate for j in second.jobs)
    assert len(s.enqueuer.sent) == 2
    s.clock.advance(2)
    third = s.submitter.submit(alerts(("Disk", "critical")))
    assert not any(j.duplicate for j in third.jobs)


def test_after_a_failed_enqueue_a_retry_sends_the_jobs_again_under_the_same_ids() -> None:
    # The broker may have taken the request's messages and only the reply was lost: the
    # client's retry must not get new ids, or a job that was sent would be delivered twice
    # under two ids.
    s = Setup()

    def broker_down(jobs) -> None:  # type: ignore[no-untyped-def]
        raise ConnectionError("broker down")

    s.enqueuer.enqueue_many = broker_down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        s.submitter.submit(alerts(("Disk", "critical")))
    first_ids = sorted(j.id for j in s.tracker.list(JobQuery())[0])
    assert len(first_ids) == 2

    del s.enqueuer.enqueue_many  # the broker is back
    s.submitter = replace(s.submitter, sleep=s.clock.advance)
    retried = s.submitter.submit(alerts(("Disk", "critical")))
    assert not any(j.duplicate for j in retried.jobs)
    assert sorted(j.id for j in retried.jobs) == first_ids
    assert sorted(j.job_id for j in s.enqueuer.sent) == first_ids


def test_a_failed_enqueue_leaves_every_job_tracked_with_its_message_for_the_reconciler() -> None:
    # Whether the messages reached the broker is not known: if no retry comes, the reconciler
    # sends those that are on the broker nowhere.
    s = Setup()

    def broker_down(jobs) -> None:  # type: ignore[no-untyped-def]
        raise ConnectionError("broker down")

    s.enqueuer.enqueue_many = broker_down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        s.submitter.submit(alerts(("Disk", "critical"), ("Cpu", "warning")))
    jobs = s.tracker.list(JobQuery())[0]
    assert len(jobs) == 3
    assert all(j.state is JobState.QUEUED and s.tracker.message(j.id) for j in jobs)


def test_a_request_hands_its_jobs_to_the_broker_at_once_high_first() -> None:
    s = Setup()
    batches: list[list[str]] = []
    s.enqueuer.enqueue_many = lambda jobs: batches.append([j.priority.value for j in jobs])  # type: ignore[method-assign]
    s.submitter.submit(alerts(("Info", "info"), ("Cpu", "warning"), ("Disk", "critical")))
    assert batches == [["high", "high", "medium", "low"]]


def test_a_replica_waits_for_the_other_replicas_pending_claim_and_answers_with_its_id() -> None:
    s = Setup()
    (alert,) = alerts(("Disk", "warning"))
    key = dedup_key(alert, "all")
    s.dedup.claim_many([(key, "job-of-the-other-replica")], 300, 5)

    def other_replica_enqueues(_: float) -> None:
        s.dedup.mark_enqueued([(key, "job-of-the-other-replica")])

    s.submitter = replace(s.submitter, sleep=other_replica_enqueues)
    (job,) = s.submitter.submit([alert]).jobs
    assert (job.id, job.duplicate) == ("job-of-the-other-replica", True)
    assert s.enqueuer.sent == []


def test_a_claim_left_pending_by_a_dead_request_is_taken_over_with_the_same_job_id() -> None:
    s = Setup()
    (alert,) = alerts(("Disk", "warning"))
    s.dedup.claim_many([(dedup_key(alert, "all"), "ghost-job")], 300, 5)  # its request died

    s.submitter = replace(s.submitter, sleep=s.clock.advance)
    (job,) = s.submitter.submit([alert]).jobs
    assert (job.id, job.duplicate) == ("ghost-job", False)
    assert [j.job_id for j in s.enqueuer.sent] == ["ghost-job"]


def test_each_job_is_tracked_with_the_message_it_is_enqueued_with() -> None:
    s = Setup()
    s.submitter.submit(alerts(("Disk", "critical")))
    for job in s.enqueuer.sent:
        assert s.tracker.message(job.job_id) == job.to_message()


def test_a_single_job_that_could_not_be_enqueued_keeps_no_message_for_the_reconciler_to_send() -> None:
    # A replay or a test alert: the caller asks again under a new id, so the reconciler must
    # not send the abandoned job too.
    s = Setup()
    (alert,) = alerts(("Disk", "critical"))

    def broker_down(job) -> None:  # type: ignore[no-untyped-def]
        raise ConnectionError("broker down")

    s.enqueuer.enqueue = broker_down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        s.submitter.submit_job(alert, parse_target(TARGETS[0]))
    (abandoned,) = s.tracker.list(JobQuery())[0]
    assert abandoned.state is JobState.FAILED
    assert s.tracker.message(abandoned.id) is None
