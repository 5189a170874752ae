"""Storm grouping decided by the delivery service over in-memory fakes on a frozen clock: who
carries a group, when its message goes, how it grows while the target is paused, the order of
an alert's firing and resolve within it, and what happens to its members when it fails."""

from __future__ import annotations

from typing import Any

from publishing.alert import AlertStatus, EnrichedAlert, parse_alertmanager
from publishing.breaker import BreakerConfig, DeferReason
from publishing.delivery import (
    Deferred,
    Delivered,
    DeliveryService,
    Failed,
    Grouped,
    GroupWait,
    Outcome,
    Receipt,
)
from publishing.errors import PermanentPublishError
from publishing.grouping import AlertGroup
from publishing.job import Job
from publishing.ordering import GateNote
from publishing.plan import Timings, plan
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import FrozenClock, InMemoryBreakerStore, InMemoryJobTracker, InMemoryOrderGate
from publishing.testing.broker import RecordingEnqueuer
from publishing.testing.grouping import InMemoryGroupStore
from publishing.tracking import JobSnapshot, JobState

WAIT_S = 2.0


class Sink:
    """Records each message's alerts; fails for good when told to."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[EnrichedAlert]]] = []
        self.refuse = False

    def publish(self, target: Any, enriched: EnrichedAlert, job_id: str) -> Receipt:
        if self.refuse:
            raise PermanentPublishError(f"HTTP 404 from target {target.name!r}", status_code=404)
        members = list(enriched.members) if isinstance(enriched, AlertGroup) else [enriched]
        self.messages.append((job_id, members))
        return Receipt(200, 0.01)

    def fingerprints(self) -> list[list[str]]:
        return [[a.alert.fingerprint for a in members] for _, members in self.messages]


class World:
    def __init__(self, **target: Any) -> None:
        self.clock = FrozenClock()
        self.tracker = InMemoryJobTracker()
        self.groups = InMemoryGroupStore(self.clock, self.tracker)
        self.gate = InMemoryOrderGate(self.clock)
        self.breakers = InMemoryBreakerStore(self.clock)
        self.sink = Sink()
        self.requeued = RecordingEnqueuer()
        raw = {"name": "chat", "type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}
        raw |= {"group_by": ["cluster"], "group_wait_s": WAIT_S, "rate_limit": False} | target
        self.service = DeliveryService(
            TargetRegistry([parse_target(raw)]),
            self.sink,
            self.breakers,
            order_gate=self.gate,
            groups=self.groups,
            requeue=self.requeued,
            retry_policy=lambda _: RetryPolicy(max_retries=0),
            breaker_config=BreakerConfig(),
            default_timeout_s=5,
            clock=self.clock,
            rng=lambda: 0.0,
        )

    def job(
        self, job_id: str, fingerprint: str | None = None, status: str = "firing", cluster: str = "eu"
    ) -> Job:
        raw = {
            "status": status,
            "labels": {"alertname": "Disk", "cluster": cluster, "severity": "warning"},
            "startsAt": "2026-01-01T00:00:00Z",
            "fingerprint": fingerprint or f"fp-{job_id}",
        }
        (alert,) = parse_alertmanager({"alerts": [raw]})
        job = Job(job_id, "chat", Priority.MEDIUM, alert, self.clock())
        if self.tracker.get(job_id) is not None:
            return job  # its message again
        self.tracker.record(
            JobSnapshot(job_id, alert.alert.fingerprint, "Disk", "chat", Priority.MEDIUM, JobState.QUEUED)
        )
        self.gate.note([GateNote("chat", alert.alert.fingerprint, job_id, status == "firing")])
        return job

    def run(self, job: Job) -> tuple[Outcome, Job | None]:
        """One attempt, and the job as the plan sends it again (None when it is done)."""
        outcome = self.service.attempt(job)
        p = plan(job, outcome, self.clock(), Timings())
        fields = dict(p.tracking)
        if p.retry is None:
            fields["message"] = None
        self.tracker.update(job.job_id, **fields)
        return outcome, p.retry

    def state(self, job_id: str) -> tuple[JobState, str | None]:
        snapshot = self.tracker.get(job_id)
        assert snapshot is not None
        return snapshot.state, snapshot.carried_by


def test_alerts_of_one_group_within_the_window_go_as_one_message() -> None:
    world = World()
    outcome, carrier = world.run(world.job("a"))
    assert outcome == GroupWait(WAIT_S) and carrier is not None
    for job_id in ("b", "c"):
        assert world.run(world.job(job_id)) == (Grouped("a"), None)
    # Another cluster is another group.
    assert isinstance(world.run(world.job("x", cluster="us"))[0], GroupWait)
    assert world.state("b")[1] == "a"

    world.clock.advance(WAIT_S / 2)
    assert isinstance(world.run(carrier)[0], GroupWait)  # not yet
    assert world.sink.messages == []
    world.clock.advance(WAIT_S / 2)
    outcome, again = world.run(carrier)
    assert isinstance(outcome, Delivered) and again is None
    assert world.sink.messages[0][0] == "a"  # the carrier's id is the message's key
    assert world.sink.fingerprints() == [["fp-a", "fp-b", "fp-c"]]
    for job_id in ("a", "b", "c"):
        assert world.state(job_id) == (JobState.SUCCEEDED, "a")
    # Each member has its own delivered record, saying which message carried it.
    assert [(r.job_id, r.excerpt) for r in world.groups.records] == [
        ("b", "carried by job a: one message of 3 alerts"),
        ("c", "carried by job a: one message of 3 alerts"),
    ]
    # A member's message delivered again is not sent again.
    assert world.run(world.job("b")) == (Grouped("a", settled=True), None)
    assert world.state("b") == (JobState.SUCCEEDED, "a")


def test_while_the_target_is_paused_the_group_keeps_growing_into_one_send() -> None:
    world = World()
    _, carrier = world.run(world.job("a"))
    assert carrier is not None
    world.breakers.pause("chat", 30)
    world.clock.advance(WAIT_S)
    outcome, carrier = world.run(carrier)
    assert isinstance(outcome, Deferred) and outcome.reason is DeferReason.PAUSED and carrier is not None
    for i in range(20):
        assert world.run(world.job(f"m{i}"))[0] == Grouped("a")
    world.clock.advance(30)
    assert isinstance(world.run(carrier)[0], Delivered)
    assert len(world.sink.messages) == 1 and len(world.sink.messages[0][1]) == 21


def test_a_resolve_joining_the_group_of_its_firing_supersedes_it_and_waits_for_one_being_sent() -> None:
    world = World()
    _, carrier = world.run(world.job("a"))
    assert world.run(world.job("fire", "fp-x"))[0] == Grouped("a")
    assert world.run(world.job("resolve", "fp-x", "resolved"))[0] == Grouped("a")
    world.clock.advance(WAIT_S)
    assert carrier is not None and isinstance(world.run(carrier)[0], Delivered)
    ((_, members),) = world.sink.messages
    assert [(a.alert.fingerprint, a.alert.status) for a in members] == [
        ("fp-a", AlertStatus.FIRING),
        ("fp-x", AlertStatus.RESOLVED),
    ]
    assert world.state("fire")[0] is JobState.SUPERSEDED
    assert world.state("resolve") == (JobState.SUCCEEDED, "a")


def test_a_resolve_waits_while_its_firing_is_in_a_group_on_the_wire() -> None:
    world = World()
    _, carrier = world.run(world.job("fire", "fp-x"))
    world.clock.advance(WAIT_S)
    world.groups.take("chat", "fire")  # the carrier took its group and is sending it
    outcome, resolve = world.run(world.job("resolve", "fp-x", "resolved"))
    assert isinstance(outcome, Deferred) and outcome.reason is DeferReason.ORDERING and resolve is not None
    assert carrier is not None and isinstance(world.run(carrier)[0], Delivered)
    assert isinstance(world.run(resolve)[0], GroupWait)  # now it opens a group of its own


def test_a_carrier_that_fails_for_good_hands_every_member_back_to_be_sent_alone() -> None:
    world = World()
    _, carrier = world.run(world.job("a"))
    for job_id in ("b", "c"):
        world.run(world.job(job_id))
    world.sink.refuse = True
    world.clock.advance(WAIT_S)
    assert carrier is not None and isinstance(world.run(carrier)[0], Failed)
    assert [j.job_id for j in world.requeued.sent] == ["b", "c"]
    assert world.state("b") == (JobState.QUEUED, None)
    assert world.tracker.message("b") == world.requeued.sent[0].to_message()
    world.sink.refuse = False
    assert isinstance(world.run(world.requeued.sent[0])[0], Delivered)
    assert world.sink.fingerprints() == [["fp-b"]]


def test_a_late_carrier_is_relieved_by_a_joiner_once_the_window_is_over() -> None:
    world = World()
    _, late = world.run(world.job("a"))
    world.run(world.job("b"))
    world.clock.advance(WAIT_S + 0.1)  # the carrier's message is stuck behind a backlog
    outcome, _ = world.run(world.job("c"))
    assert isinstance(outcome, Delivered)
    assert world.sink.messages[0][0] == "c" and world.sink.fingerprints() == [["fp-a", "fp-b", "fp-c"]]
    assert world.state("a") == (JobState.SUCCEEDED, "c")
    assert late is not None and world.run(late)[0] == Grouped("c", settled=True)
    assert world.state("a") == (JobState.SUCCEEDED, "c")
