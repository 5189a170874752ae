"""Storm grouping (docs/design.md (Storm grouping)): the alerts of a grouped target that share
the values of its ``group_by`` labels and arrive within ``group_wait_s`` go out as one message.

A group is kept by a ``GroupStore`` (Redis in ``publishing.adapters.redis.grouping``, in
memory in ``publishing.testing.grouping``). The first job to join a group carries it: it waits
the window, and, once admitted by the breaker and the rate limit, takes the group (which
closes it) and sends one message with every member's alert. A later job joins and is done as
far as its own message goes. Members stay in the store until the carrier's send is confirmed
(``finish``) or the carrier fails for good (``dissolve``: each member is then sent on its own).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from publishing.alert import AlertStatus, EnrichedAlert
from publishing.job import Job
from publishing.tracking import JobState

if TYPE_CHECKING:
    from publishing.history import AttemptRecord

# A carrier touches its group at every attempt. Its message comes back at the tail of its
# queue, so behind a backlog it is late; a job joining a group whose window is over and whose
# carrier has not been seen for this long (or for the window, if longer) carries the group
# instead and sends it, once admitted. So a group goes about when its window ends whatever the
# queue ahead of its carrier, a carrier that is gone never strands a group, and the carrier
# changes at most once a window; a late carrier finds itself a member when it comes back.
CARRIER_LATE_S = 0.5


def late_after_s(wait_s: float) -> float:
    """How long a carrier may go unseen, its group's window over, before a joiner takes over."""
    return max(wait_s, CARRIER_LATE_S)


# A resolve whose alert's firing is in a group being sent waits this long and asks again.
ORDER_WAIT_S = 1.0


class Role(StrEnum):
    OPENED = "opened"  # this job opened the group and carries it: wait the window
    WAITING = "waiting"  # this job carries the group, whose window is not over
    DUE = "due"  # this job carries the group and may send it (once admitted)
    JOINED = "joined"  # this job is a member; ``carrier`` sends its alert
    # This job's group was already sent by ``carrier`` (its message came again, or its late
    # carrier came back); ``carrier`` is empty when its alert was superseded in the group.
    DONE = "done"
    SOLO = "solo"  # this job's group failed: it is sent on its own
    ORDER_WAIT = "order_wait"  # a resolve whose firing is in a group on the wire: wait
    NEW = "new"  # asked without joining: this job is in no group


@dataclass(frozen=True)
class Membership:
    role: Role
    carrier: str = ""
    wait_s: float = 0.0


@dataclass(frozen=True)
class GroupMember:
    """A job in a group: its alert's identity and the whole job message, so that the job can
    be sent again on its own if its group fails."""

    job_id: str
    fingerprint: str
    firing: bool
    message: Mapping[str, Any]
    superseded: bool = False

    @classmethod
    def of(cls, job: Job) -> GroupMember:
        alert = job.alert.alert
        return cls(job.job_id, alert.fingerprint, alert.status is AlertStatus.FIRING, job.to_message())

    @property
    def job(self) -> Job:
        return Job.from_message(self.message)

    def to_json(self) -> str:
        return json.dumps(
            {
                "job_id": self.job_id,
                "fingerprint": self.fingerprint,
                "firing": self.firing,
                "message": self.message,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes, superseded: bool = False) -> GroupMember:
        data = json.loads(raw)
        return cls(data["job_id"], data["fingerprint"], bool(data["firing"]), data["message"], superseded)


@dataclass(frozen=True)
class Settlement:
    """What tracking records of a member once its group is done, and its history record."""

    job_id: str
    fields: Mapping[str, Any]
    record: AttemptRecord | None = None


class GroupStore(Protocol):
    def join(
        self, target: str, key: str, member: GroupMember, wait_s: float, *, join: bool = True
    ) -> Membership:
        """Put ``member`` in the open group of (target, key), opening one (this job carries
        it) when there is none; or, for a job already in a group, say where it stands. One
        member an alert in a group: a later job of the same fingerprint replaces (supersedes)
        the earlier. A resolve whose firing is in a group being sent waits (``ORDER_WAIT``).
        With ``join`` false, only say where the job stands (``NEW`` when in no group)."""
        ...

    def take(self, target: str, group_id: str) -> list[GroupMember] | None:
        """Close the group (a later job opens a new one) and return its members in the order
        they joined, superseded ones flagged; the same members again on a later call (the
        carrier's retry). None when the group is gone."""
        ...

    def finish(self, target: str, group_id: str, settlements: Sequence[Settlement]) -> None:
        """The group's message was delivered: record each member's settlement, forget the group."""
        ...

    def dissolve(self, target: str, carrier: str) -> list[GroupMember]:
        """The carrier failed for good: forget its group, mark every member to be sent on its
        own (``SOLO``), record their tracking as waiting again with their own messages, and
        return the members to send again (the carrier and superseded ones excluded)."""
        ...


@dataclass(frozen=True)
class AlertGroup(EnrichedAlert):
    """A group's message on its way to a publisher: the first alert listed, carrying them all
    in ``members`` (firing before resolved) and the values of the labels that made the group.
    Being an alert, it goes through every publisher unchanged; the formatters list it."""

    members: tuple[EnrichedAlert, ...] = field(default=())
    group_labels: Mapping[str, str] = field(default_factory=dict)
    # Each member's own job id, in the order of ``members``.
    job_ids: tuple[str, ...] = field(default=())


def group_key(by: Sequence[str], enriched: EnrichedAlert) -> str:
    """The group of an alert: the values of the ``by`` labels (a missing label is empty)."""
    values = [enriched.alert.labels.get(name, "") for name in by]
    digest = hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()
    return digest[:24]


def message_of(members: Sequence[GroupMember], by: Sequence[str]) -> AlertGroup | None:
    """The message of a group: its live members' alerts, firing before resolved (each alert is
    in a group once, so this keeps every alert's own order), in the order they joined."""
    live = [(m.job_id, m.job.alert) for m in members if not m.superseded]
    if not live:
        return None
    ordered = sorted(live, key=lambda pair: pair[1].alert.status is not AlertStatus.FIRING)
    first = ordered[0][1]
    labels = {name: first.alert.labels.get(name, "") for name in by}
    return AlertGroup(
        alert=first.alert,
        classification=first.classification,
        enrichment_metadata=first.enrichment_metadata,
        envelope=first.envelope,
        members=tuple(a for _, a in ordered),
        group_labels=labels,
        job_ids=tuple(job_id for job_id, _ in ordered),
    )


def settlements(
    carrier: Job, members: Sequence[GroupMember], status_code: int, duration_s: float, now: float
) -> list[Settlement]:
    """What a delivered group leaves in tracking and the history: each live member succeeded,
    carried by the carrier's message (its own attempt record says so; the carrier's own record
    is the worker's, as for any job), each superseded member superseded."""
    # Imported here: the history's records are built from delivery outcomes, and delivery
    # imports this module.
    from publishing.history import AttemptRecord, AttemptResult

    live = sum(1 for m in members if not m.superseded)
    done: list[Settlement] = []
    for m in members:
        if m.superseded:
            fields = {"state": JobState.SUPERSEDED, "completed_at": now, "carried_by": None, "message": None}
            done.append(Settlement(m.job_id, fields))
            continue
        fields = {
            "state": JobState.SUCCEEDED,
            "completed_at": now,
            "carried_by": carrier.job_id,
            "message": None,
        }
        record = None
        if m.job_id != carrier.job_id:
            job = m.job
            record = AttemptRecord(
                id=str(uuid.uuid4()),
                job_id=job.job_id,
                target=job.target,
                via=job.via,
                attempt=1,
                attempted_at=datetime.fromtimestamp(now, UTC),
                result=AttemptResult.DELIVERED,
                status_code=status_code,
                duration_s=duration_s,
                error_type=None,
                excerpt=f"carried by job {carrier.job_id}: one message of {live} alerts",
                fingerprint=job.alert.alert.fingerprint,
                alert_name=job.alert.alert.alert_name,
                priority=job.priority,
                alert=job.alert.to_dict(),
            )
        done.append(Settlement(m.job_id, fields, record))
    return done


class Requeue(Protocol):
    """Where the members of a dissolved group go to be sent on their own (the broker)."""

    def enqueue_many(self, jobs: Sequence[Job]) -> None: ...
