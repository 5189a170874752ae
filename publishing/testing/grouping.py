"""Storm groups in memory (``publishing.grouping``); its clock stands for Redis's. Settlements
go to an in-memory tracker and a list of history records, as the Redis store's go to tracking
and the history queue in one pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from publishing.grouping import (
    ORDER_WAIT_S,
    GroupMember,
    Membership,
    Role,
    Settlement,
    late_after_s,
)
from publishing.testing.clock import FrozenClock
from publishing.testing.tracking import InMemoryJobTracker
from publishing.tracking import JobState


@dataclass
class _Group:
    key: str
    carrier: str
    due: float
    seen: float
    taken: bool = False
    members: dict[str, GroupMember] = field(default_factory=dict)  # in join order
    by_fingerprint: dict[str, str] = field(default_factory=dict)


class InMemoryGroupStore:
    def __init__(self, clock: FrozenClock, tracker: InMemoryJobTracker | None = None) -> None:
        self._clock = clock
        self._tracker = tracker
        self._groups: dict[tuple[str, str], _Group] = {}
        self._open: dict[tuple[str, str], str] = {}
        self._job_group: dict[tuple[str, str], str] = {}
        self._done: dict[tuple[str, str], str] = {}
        self._solo: set[tuple[str, str]] = set()
        self._inflight: dict[tuple[str, str], str] = {}
        self.records: list[Any] = []

    def join(
        self, target: str, key: str, member: GroupMember, wait_s: float, *, join: bool = True
    ) -> Membership:
        now, job_id = self._clock(), member.job_id
        if (target, job_id) in self._solo:
            return Membership(Role.SOLO)
        if (target, job_id) in self._done:
            return Membership(Role.DONE, self._done[(target, job_id)])
        gid = self._job_group.get((target, job_id))
        mine = self._groups.get((target, gid)) if gid is not None else None
        if gid is not None and mine is not None:
            if mine.carrier != job_id:
                return Membership(Role.JOINED, mine.carrier)
            mine.seen = now
            if mine.taken or now >= mine.due:
                return Membership(Role.DUE, gid)
            return Membership(Role.WAITING, gid, mine.due - now)
        if not join:
            return Membership(Role.NEW)
        if not member.firing and (target, member.fingerprint) in self._inflight:
            return Membership(Role.ORDER_WAIT, self._inflight[(target, member.fingerprint)], ORDER_WAIT_S)
        gid = self._open.get((target, key))
        group = self._groups.get((target, gid)) if gid is not None else None
        if gid is not None and group is not None:
            self._add(group, member)
            self._job_group[(target, job_id)] = gid
            if not group.taken and now >= group.due and now - group.seen > late_after_s(wait_s):
                group.carrier, group.seen = job_id, now
                if group.taken or now >= group.due:
                    return Membership(Role.DUE, gid)
                return Membership(Role.WAITING, gid, group.due - now)
            return Membership(Role.JOINED, group.carrier)
        group = _Group(key=key, carrier=job_id, due=now + wait_s, seen=now)
        self._add(group, member)
        self._groups[(target, job_id)] = group
        self._open[(target, key)] = job_id
        self._job_group[(target, job_id)] = job_id
        return Membership(Role.OPENED, job_id, wait_s)

    @staticmethod
    def _add(group: _Group, member: GroupMember) -> None:
        earlier = group.by_fingerprint.get(member.fingerprint)
        if earlier is not None and earlier != member.job_id:
            group.members[earlier] = replace(group.members[earlier], superseded=True)
        group.by_fingerprint[member.fingerprint] = member.job_id
        group.members[member.job_id] = member

    def take(self, target: str, group_id: str) -> list[GroupMember] | None:
        group = self._groups.get((target, group_id))
        if group is None:
            return None
        group.taken = True
        if self._open.get((target, group.key)) == group_id:
            del self._open[(target, group.key)]
        for m in group.members.values():
            if m.firing and not m.superseded:
                self._inflight[(target, m.fingerprint)] = group_id
        return list(group.members.values())

    def finish(self, target: str, group_id: str, settlements: Sequence[Settlement]) -> None:
        group = self._forget(target, group_id)
        if group is not None:
            for job_id, m in group.members.items():
                self._done[(target, job_id)] = "" if m.superseded else group.carrier
        for s in settlements:
            if self._tracker is not None:
                self._tracker.update(s.job_id, **s.fields)
            if s.record is not None:
                self.records.append(s.record)

    def dissolve(self, target: str, carrier: str) -> list[GroupMember]:
        gid = self._job_group.get((target, carrier))
        group = self._groups.get((target, gid)) if gid is not None else None
        if gid is None or group is None or group.carrier != carrier:
            return []
        self._forget(target, gid)
        released = []
        for m in group.members.values():
            self._solo.add((target, m.job_id))
            if m.job_id == carrier:
                continue
            if m.superseded:
                self._settle(m.job_id, state=JobState.SUPERSEDED, carried_by=None, message=None)
                continue
            self._settle(m.job_id, state=JobState.QUEUED, carried_by=None, message=dict(m.message), wait_s=0)
            released.append(m)
        return released

    def _settle(self, job_id: str, **fields: Any) -> None:
        if self._tracker is not None:
            self._tracker.update(job_id, **fields)

    def _forget(self, target: str, gid: str) -> _Group | None:
        group = self._groups.pop((target, gid), None)
        if group is None:
            return None
        if self._open.get((target, group.key)) == gid:
            del self._open[(target, group.key)]
        for job_id in group.members:
            self._job_group.pop((target, job_id), None)
        for fp, holder in list(self._inflight.items()):
            if holder == gid and fp[0] == target:
                del self._inflight[fp]
        return group
