"""Storm groups (``publishing.grouping.GroupStore``), in memory and on Redis: who carries a
group, when it is due, what taking it returns and closes, and what its end leaves behind."""

from __future__ import annotations

import pytest

from publishing.adapters.redis.grouping import RedisGroupStore
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.alert import parse_alertmanager
from publishing.grouping import GroupMember, GroupStore, Membership, Role, Settlement
from publishing.job import Job
from publishing.priority import Priority
from publishing.testing.grouping import InMemoryGroupStore
from publishing.testing.tracking import InMemoryJobTracker
from publishing.tracking import JobSnapshot, JobState, JobTracker
from tests.contract.conftest import TOLERANCE_S, Backend

TARGET, KEY = "chat", "k1"


@pytest.fixture
def tracker(backend: Backend) -> JobTracker:
    if backend.is_redis:
        return RedisJobTracker(backend.redis, prefix="t", capacity=100, ttl_s=60)
    return InMemoryJobTracker()


@pytest.fixture
def store(backend: Backend, tracker: JobTracker) -> GroupStore:
    if backend.is_redis:
        assert isinstance(tracker, RedisJobTracker)
        return RedisGroupStore(backend.redis, "t", tracker, ttl_s=60)
    assert isinstance(tracker, InMemoryJobTracker)
    return InMemoryGroupStore(backend.clock, tracker)


def member(job_id: str, fingerprint: str | None = None, status: str = "firing") -> GroupMember:
    raw = {
        "status": status,
        "labels": {"alertname": "Disk", "cluster": "c1"},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": fingerprint or f"fp-{job_id}",
    }
    (alert,) = parse_alertmanager({"alerts": [raw]})
    return GroupMember.of(Job(job_id, TARGET, Priority.MEDIUM, alert, 0.0))


def ids(members: list[GroupMember] | None) -> list[tuple[str, bool]]:
    assert members is not None
    return [(m.job_id, m.superseded) for m in members]


def test_the_first_job_opens_and_carries_the_group_and_later_ones_join_it(store) -> None:
    assert store.join(TARGET, KEY, member("a"), 2.0) == Membership(Role.OPENED, "a", 2.0)
    assert store.join(TARGET, KEY, member("b"), 2.0) == Membership(Role.JOINED, "a")
    # Asked again (a redelivered message), each learns the same.
    assert store.join(TARGET, KEY, member("b"), 2.0) == Membership(Role.JOINED, "a")
    again = store.join(TARGET, KEY, member("a"), 2.0)
    assert again.role is Role.WAITING and 2.0 - TOLERANCE_S <= again.wait_s <= 2.0
    # Another key is another group.
    assert store.join(TARGET, "k2", member("c"), 2.0).role is Role.OPENED
    assert store.join("other", KEY, member("d"), 2.0).role is Role.OPENED


def test_the_carrier_is_due_once_the_window_is_over(store, backend) -> None:
    store.join(TARGET, KEY, member("a"), 0.2)
    backend.advance(0.25)
    assert store.join(TARGET, KEY, member("a"), 0.2) == Membership(Role.DUE, "a")


def test_taking_closes_the_group_and_returns_its_members_in_join_order(store) -> None:
    store.join(TARGET, KEY, member("a"), 1.0)
    store.join(TARGET, KEY, member("b"), 1.0)
    assert ids(store.take(TARGET, "a")) == [("a", False), ("b", False)]
    # A job arriving now opens a new group; the carrier's retry takes the same members.
    assert store.join(TARGET, KEY, member("c"), 1.0).role is Role.OPENED
    assert ids(store.take(TARGET, "a")) == [("a", False), ("b", False)]
    assert store.join(TARGET, KEY, member("a"), 1.0) == Membership(Role.DUE, "a")
    assert store.take(TARGET, "nope") is None


def test_a_later_job_of_the_same_alert_supersedes_the_earlier_member(store) -> None:
    store.join(TARGET, KEY, member("a"), 1.0)
    store.join(TARGET, KEY, member("fire", "fp-x"), 1.0)
    store.join(TARGET, KEY, member("resolve", "fp-x", "resolved"), 1.0)
    assert ids(store.take(TARGET, "a")) == [("a", False), ("fire", True), ("resolve", False)]


def test_a_resolve_waits_while_its_firing_is_in_a_group_being_sent(store) -> None:
    store.join(TARGET, KEY, member("fire", "fp-x"), 1.0)
    store.take(TARGET, "fire")
    waiting = store.join(TARGET, KEY, member("resolve", "fp-x", "resolved"), 1.0)
    assert waiting.role is Role.ORDER_WAIT and waiting.wait_s > 0
    store.finish(TARGET, "fire", [])
    assert store.join(TARGET, KEY, member("resolve", "fp-x", "resolved"), 1.0).role is Role.OPENED


def test_finishing_settles_every_member_and_a_redelivered_member_is_done(store, tracker) -> None:
    for job_id in ("a", "b"):
        tracker.record(
            JobSnapshot(job_id, f"fp-{job_id}", "Disk", TARGET, Priority.MEDIUM, JobState.DEFERRED)
        )
        store.join(TARGET, KEY, member(job_id), 1.0)
    store.take(TARGET, "a")
    done = {"state": JobState.SUCCEEDED, "carried_by": "a"}
    store.finish(TARGET, "a", [Settlement("a", done), Settlement("b", done)])
    snapshot = tracker.get("b")
    assert snapshot is not None and (snapshot.state, snapshot.carried_by) == (JobState.SUCCEEDED, "a")
    assert store.join(TARGET, KEY, member("b"), 1.0) == Membership(Role.DONE, "a")
    assert store.join(TARGET, KEY, member("c"), 1.0).role is Role.OPENED


def test_a_member_superseded_in_a_delivered_group_is_done_with_no_carrier(store) -> None:
    store.join(TARGET, KEY, member("fire", "fp-x"), 1.0)
    store.join(TARGET, KEY, member("resolve", "fp-x", "resolved"), 1.0)
    store.take(TARGET, "fire")
    store.finish(TARGET, "fire", [])
    assert store.join(TARGET, KEY, member("fire", "fp-x"), 1.0) == Membership(Role.DONE, "")
    assert store.join(TARGET, KEY, member("resolve", "fp-x", "resolved"), 1.0) == Membership(
        Role.DONE, "fire"
    )


def test_dissolving_sends_every_live_member_on_its_own_and_keeps_its_message(store, tracker) -> None:
    for job_id in ("a", "b", "fire"):
        tracker.record(
            JobSnapshot(job_id, f"fp-{job_id}", "Disk", TARGET, Priority.MEDIUM, JobState.DEFERRED)
        )
    store.join(TARGET, KEY, member("a"), 1.0)
    store.join(TARGET, KEY, member("b"), 1.0)
    store.join(TARGET, KEY, member("fire", "fp-x"), 1.0)
    store.join(TARGET, KEY, member("resolve", "fp-x", "resolved"), 1.0)
    # Only the carrier can dissolve its group.
    assert store.dissolve(TARGET, "b") == []
    released = store.dissolve(TARGET, "a")
    assert [m.job_id for m in released] == ["b", "resolve"]
    assert released[0].job == member("b").job
    b, fire = tracker.get("b"), tracker.get("fire")
    assert b is not None and b.state is JobState.QUEUED
    assert tracker.message("b") == member("b").message
    assert fire is not None and fire.state is JobState.SUPERSEDED
    for job_id in ("a", "b", "resolve"):
        assert store.join(TARGET, KEY, member(job_id), 1.0).role is Role.SOLO
    assert store.join(TARGET, KEY, member("new"), 1.0).role is Role.OPENED


def test_asking_without_joining_changes_nothing(store) -> None:
    assert store.join(TARGET, KEY, member("a"), 1.0, join=False) == Membership(Role.NEW)
    assert store.join(TARGET, KEY, member("b"), 1.0).role is Role.OPENED
    assert store.join(TARGET, KEY, member("a"), 1.0, join=False) == Membership(Role.NEW)
    assert store.join(TARGET, KEY, member("b"), 1.0, join=False).role is Role.WAITING


def test_a_joiner_carries_a_group_whose_window_is_over_and_whose_carrier_is_late(store, backend) -> None:
    store.join(TARGET, KEY, member("a"), 0.2)
    backend.advance(0.3)
    # The window is over but the carrier was seen lately: a joiner is a member.
    assert store.join(TARGET, KEY, member("b"), 0.2) == Membership(Role.JOINED, "a")
    backend.advance(0.4)  # unseen for longer than CARRIER_LATE_S
    assert store.join(TARGET, KEY, member("c"), 0.2) == Membership(Role.DUE, "a")
    # The late carrier is a member of the group it opened, which "c" now sends.
    assert store.join(TARGET, KEY, member("a"), 0.2, join=False) == Membership(Role.JOINED, "c")
    assert ids(store.take(TARGET, "a")) == [("a", False), ("b", False), ("c", False)]
