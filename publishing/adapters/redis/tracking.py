"""Job tracking on Redis: one hash a job, capped and expiring, indexed by recency and by
state, target and priority, so a page or a count reads only what it returns."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import ResponseError

from publishing.adapters.redis.client import eval_script, load_script, run_writes, text
from publishing.priority import Priority
from publishing.tracking import MESSAGE_FIELDS, JobQuery, JobSnapshot, JobState

_FIELDS = (
    "id",
    "fingerprint",
    "alert_name",
    "target",
    "priority",
    "state",
    "retry_count",
    "error_type",
    "last_error",
    "submitted_at",
    "started_at",
    "completed_at",
    "delivered_via",
    "carried_by",
)
_FILTERED = ("state", "priority", "target")

# Aliases, because inside the class ``list`` names the method.
_Ids = list[str]
_Filters = list[tuple[str, str]]
_Page = tuple[list[JobSnapshot], int]

# A filtered walk reads ids this many at a time: one round trip a chunk.
WALK_CHUNK = 200


def _encode_extra(name: str, value: Any) -> str:
    if name == "message":
        return json.dumps(value, separators=(",", ":")) if value else ""
    return _encode(value)


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, JobState | Priority):
        return value.value
    return str(value)


def _filters(query: JobQuery) -> list[tuple[str, str]]:
    values = [_encode(query.state), _encode(query.priority), query.target]
    return [(name, value) for name, value in zip(_FILTERED, values, strict=True) if value]


class RedisJobTracker:
    """``publishing.tracking.JobTracker`` on Redis. Index entries of a job whose hash expired
    are dropped by the record script's TTL trim or by the first page read that finds them."""

    def __init__(self, client: redis.Redis, *, prefix: str, capacity: int, ttl_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self._capacity = capacity
        self._ttl_ms = int(ttl_s * 1000)
        self._index = f"{prefix}:jobs"
        self._registry = f"{prefix}:jobs:indices"
        self._record = load_script(client, "tracking_record")
        self._update = load_script(client, "tracking_update")
        self._start = load_script(client, "tracking_start")
        self._forget = load_script(client, "tracking_forget")
        self.scripts = [self._record, self._update, self._start]
        self._intercard: bool | None = None  # ZINTERCARD needs Redis 7

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def _starts_key(self, job_id: str) -> str:
        return f"{self._prefix}:starts:{job_id}"

    def _index_key(self, name: str, value: str) -> str:
        return f"{self._index}:{name}:{value}"

    def record(self, snapshot: JobSnapshot) -> None:
        self.record_many([snapshot])

    def record_many(
        self, snapshots: builtins.list[JobSnapshot], messages: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        def build(pipe: Pipeline) -> None:
            for snapshot in snapshots:
                self._record_one(snapshot, pipe, (messages or {}).get(snapshot.id))

        run_writes(self._client, build, [self._record])

    def _record_one(self, snapshot: JobSnapshot, client: Any, message: Mapping[str, Any] | None) -> None:
        data = snapshot.to_dict()
        args: list[Any] = [
            self._ttl_ms,
            self._capacity,
            snapshot.submitted_at or 0,
            snapshot.id,
            self._key(""),
            self._index + ":",
            self._starts_key(""),
        ]
        for name in _FIELDS:
            if data.get(name) is not None:
                args += [name, _encode(data[name])]
        if message:
            args += ["message", _encode_extra("message", message)]
        keys = [self._key(snapshot.id), self._index, self._registry]
        eval_script(self._record, keys, args, client)

    def update(self, job_id: str, *, client: Any = None, **fields: Any) -> None:
        """``client`` may be a pipeline, to batch this with other writes."""
        args: list[str] = [job_id, self._index + ":"]
        for name, value in fields.items():
            if name not in _FIELDS and name not in MESSAGE_FIELDS:
                raise ValueError(f"unknown tracking field {name!r}")
            args += [name, _encode_extra(name, value)]
        eval_script(self._update, [self._key(job_id), self._index, self._registry], args, client)

    def mark_started(self, job_id: str, attempt_key: str, started_at: float) -> int:
        keys, args = self._start_call(job_id, attempt_key, started_at)
        return int(self._start(keys=keys, args=args))

    def queue_start(self, pipe: Pipeline, job_id: str, attempt_key: str, started_at: float) -> None:
        """``mark_started`` queued on a pipeline (the attempt's first round trip): its reply
        there is the start count. ``run_pipeline`` loads ``start_scripts`` if Redis lost them."""
        keys, args = self._start_call(job_id, attempt_key, started_at)
        eval_script(self._start, keys, args, pipe)

    def _start_call(self, job_id: str, attempt_key: str, started_at: float) -> tuple[list[str], list[Any]]:
        keys = [self._key(job_id), self._starts_key(job_id), self._index, self._registry]
        args: list[Any] = [repr(started_at), attempt_key, self._ttl_ms, job_id, self._index + ":"]
        return keys, args

    @property
    def start_scripts(self) -> list[Any]:
        return [self._start]

    def get(self, job_id: str) -> JobSnapshot | None:
        return self._decode(self._client.hmget(self._key(job_id), _FIELDS))

    def message(self, job_id: str) -> dict[str, Any] | None:
        raw = self._client.hget(self._key(job_id), "message")
        return json.loads(raw) if raw else None

    @staticmethod
    def _decode(values: builtins.list[Any]) -> JobSnapshot | None:
        # The snapshot's fields only: the kept message is read when it is wanted, not per page.
        fields = {name: text(v) for name, v in zip(_FIELDS, values, strict=True) if v is not None}
        return JobSnapshot.from_dict(fields) if "id" in fields else None

    def _fetch(self, ids: _Ids) -> list[JobSnapshot | None]:
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self._key(job_id), _FIELDS)
        return [self._decode(raw) for raw in pipe.execute()] if ids else []

    def entries_in(self, states: Iterable[JobState], chunk: int = WALK_CHUNK) -> Iterator[dict[str, str]]:
        """Every tracked job in one of ``states``, as its ``id``, ``state``, ``updated_at``,
        ``wait_s`` and whether a message is kept (``has_message``): what the reconciler
        weighs. Read a chunk of ids at a time from the state indexes."""
        wanted = ("id", "state", "updated_at", "wait_s")
        for state in states:
            index, start = self._index_key("state", state.value), 0
            while True:
                ids = [text(i) for i in self._client.zrange(index, start, start + chunk - 1)]
                pipe = self._client.pipeline(transaction=False)
                for job_id in ids:
                    pipe.hmget(self._key(job_id), wanted)
                    pipe.hstrlen(self._key(job_id), "message")
                replies = pipe.execute() if ids else []
                for values, length in zip(replies[::2], replies[1::2], strict=True):
                    if values[0] is not None:
                        entry = {k: text(v) for k, v in zip(wanted, values, strict=True) if v is not None}
                        yield {**entry, "has_message": "1" if int(length) else ""}
                start += len(ids)
                if len(ids) < chunk:
                    break

    def tracked(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` have a tracking entry."""
        ids = builtins.list(job_ids)
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self._key(job_id))
        return {job_id for job_id, n in zip(ids, pipe.execute() if ids else [], strict=True) if n}

    def _drop_stale(self, ids: _Ids) -> int:
        """Drop the index entries of these jobs whose hashes are gone; how many were dropped."""
        if not ids:
            return 0
        return int(self._forget(keys=[self._index, self._registry], args=[self._key(""), *ids]))

    def list(self, query: JobQuery) -> _Page:
        filters = _filters(query)
        if len(filters) > 1:
            return self._walk(query, filters)
        index = self._index_key(*filters[0]) if filters else self._index
        return self._page(index, query)

    def _page(self, index: str, query: JobQuery) -> _Page:
        """One filter or none: the newest ``limit`` entries of one index, read past any whose
        hash expired (they are dropped as found)."""
        jobs: builtins.list[JobSnapshot] = []
        start = 0
        while len(jobs) < query.limit:
            want = query.limit - len(jobs)
            ids = [text(i) for i in self._client.zrevrange(index, start, start + want - 1)]
            snapshots = self._fetch(ids)
            stale = [job_id for job_id, s in zip(ids, snapshots, strict=True) if s is None]
            # A job whose state changed between the two reads is left to the next page read.
            jobs += [s for s in snapshots if s is not None and _matches(s, query)]
            start += len(ids) - self._drop_stale(stale)
            if len(ids) < want:
                break
        return jobs, int(self._client.zcard(index))

    def _walk(self, query: JobQuery, filters: _Filters) -> _Page:
        """Two or three filters: walk the smallest of their indices, newest first, checking
        the other fields of each job, until ``limit`` jobs match."""
        indices = [self._index_key(name, value) for name, value in filters]
        pipe = self._client.pipeline(transaction=False)
        for index in indices:
            pipe.zcard(index)
        sizes = pipe.execute()
        smallest = indices[min(range(len(indices)), key=lambda i: sizes[i])]
        total = self._intersection_size(indices)
        found: _Ids = []
        stale: _Ids = []
        matched, start = 0, 0
        while len(found) < query.limit or total is None:
            ids = [text(i) for i in self._client.zrevrange(smallest, start, start + WALK_CHUNK - 1)]
            pipe = self._client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(self._key(job_id), *_FILTERED)
            for job_id, row in zip(ids, pipe.execute() if ids else [], strict=True):
                values = [None if v is None else text(v) for v in row]
                if values[0] is None:
                    stale.append(job_id)
                elif all(values[_FILTERED.index(name)] == value for name, value in filters):
                    matched += 1
                    if len(found) < query.limit:
                        found.append(job_id)
            start += len(ids)
            if len(ids) < WALK_CHUNK:
                break
        self._drop_stale(stale)
        jobs = [s for s in self._fetch(found) if s is not None]
        return jobs, matched if total is None else total

    def _intersection_size(self, indices: _Ids) -> int | None:
        """How many jobs are in every one of ``indices``; None where Redis (before 7) cannot
        tell without the walk."""
        if self._intercard is False:
            return None
        try:
            size = int(self._client.zintercard(len(indices), indices))
        except ResponseError:
            self._intercard = False
            return None
        self._intercard = True
        return size

    def count_by_state(self) -> dict[str, int]:
        pipe = self._client.pipeline(transaction=False)
        for state in JobState:
            pipe.zcard(self._index_key("state", state.value))
        return {state.value: int(n) for state, n in zip(JobState, pipe.execute(), strict=True)}


def _matches(snapshot: JobSnapshot, query: JobQuery) -> bool:
    return (
        (query.state is None or snapshot.state is query.state)
        and (query.priority is None or snapshot.priority is query.priority)
        and (query.target is None or snapshot.target == query.target)
    )
