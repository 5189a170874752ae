"""Storm groups on Redis (``publishing.grouping``): every change of a group is one Lua script
on Redis's clock; a group's settlement goes to tracking and the history queue in the same
pipeline as its end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline

from publishing.adapters.redis.attempts import RedisHistoryQueue
from publishing.adapters.redis.client import RedisStore, StoreScript, eval_script, run_pipeline, text
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.grouping import (
    ORDER_WAIT_S,
    GroupMember,
    Membership,
    Role,
    Settlement,
    late_after_s,
)
from publishing.tracking import JobState


class RedisGroupStore(RedisStore):
    _join = StoreScript("group_join")
    _take = StoreScript("group_take")
    _end = StoreScript("group_end")

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        tracker: RedisJobTracker,
        history: RedisHistoryQueue | None = None,
        *,
        ttl_s: float,
    ) -> None:
        super().__init__(client, prefix)
        self._tracker = tracker
        self._history = history
        # How long a group's marks (a member's carrier, a job sent on its own) are kept: the
        # tracking TTL, as long as a job is remembered at all.
        self._ttl_ms = int(ttl_s * 1000)

    def _base(self, target: str) -> str:
        # One hash tag a target: every key of its groups is in one slot.
        return f"{self._target_key('group', target)}:"

    def join(
        self, target: str, key: str, member: GroupMember, wait_s: float, *, join: bool = True
    ) -> Membership:
        role, who, wait_ms = self._join(
            keys=[self._base(target)],
            args=[
                key,
                member.job_id,
                member.fingerprint,
                1 if member.firing else 0,
                member.to_json(),
                max(1, int(wait_s * 1000)),
                self._ttl_ms,
                int(late_after_s(wait_s) * 1000),
                int(ORDER_WAIT_S * 1000),
                1 if join else 0,
            ],
        )
        return Membership(Role(text(role)), text(who), max(0.0, int(wait_ms) / 1000))

    def take(self, target: str, group_id: str) -> list[GroupMember] | None:
        raw = self._take(keys=[self._base(target)], args=[group_id, self._ttl_ms])
        if raw is None:
            return None
        return [
            GroupMember.from_json(raw[i], superseded=bool(int(raw[i + 1]))) for i in range(0, len(raw), 2)
        ]

    def finish(self, target: str, group_id: str, settlements: Sequence[Settlement]) -> None:
        records = [s.record for s in settlements if s.record is not None]

        def build(pipe: Pipeline) -> None:
            eval_script(self._end, [self._base(target)], [group_id, self._ttl_ms, "done"], pipe)
            for s in settlements:
                self._tracker.update(s.job_id, client=pipe, **s.fields)
            if records and self._history is not None:
                self._history.push(records, client=pipe)

        run_pipeline(self._client, build, [self._end, *self._tracker.scripts])

    def dissolve(self, target: str, carrier: str) -> list[GroupMember]:
        base = self._base(target)
        gid = self._client.get(f"{base}job:{carrier}")
        if gid is None or self._client.hget(f"{base}g:{text(gid)}", "carrier") not in (
            carrier,
            carrier.encode(),
        ):
            return []
        group_id = text(gid)
        # Taking first closes the group, so no job joins it between reading and forgetting it.
        members = self.take(target, group_id) or []
        released = [m for m in members if m.job_id != carrier and not m.superseded]

        def build(pipe: Pipeline) -> None:
            eval_script(self._end, [base], [group_id, self._ttl_ms, "solo"], pipe)
            for m in members:
                if m.job_id == carrier:
                    continue
                fields: dict[str, Any] = (
                    {"state": JobState.SUPERSEDED, "carried_by": None, "message": None}
                    if m.superseded
                    else {
                        "state": JobState.QUEUED,
                        "carried_by": None,
                        "message": dict(m.message),
                        "wait_s": 0,
                    }
                )
                self._tracker.update(m.job_id, client=pipe, **fields)

        run_pipeline(self._client, build, [self._end, *self._tracker.scripts])
        return released
