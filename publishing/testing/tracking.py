"""Job tracking and submission de-duplication in memory."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import Any

from publishing.testing.clock import FrozenClock
from publishing.tracking import MESSAGE_FIELDS, Claim, ClaimStatus, JobQuery, JobSnapshot, JobState


class InMemoryJobTracker:
    """Jobs ordered as Redis orders them, by submission time; jobs submitted at the same
    instant keep the order they were recorded in (Redis breaks such ties by id)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._jobs: dict[str, tuple[float, int, JobSnapshot]] = {}  # id -> (submitted, seq, job)
        self._seq = itertools.count()
        self._starts: dict[tuple[str, str], int] = {}
        self._capacity = capacity
        # What is kept beside a snapshot: the job's message, its countdown, resends.
        self.extra: dict[str, dict[str, Any]] = {}

    def _newest_first(self) -> list[JobSnapshot]:
        return [job for *_, job in sorted(self._jobs.values(), key=lambda e: e[:2], reverse=True)]

    def record(self, snapshot: JobSnapshot) -> None:
        self._jobs[snapshot.id] = (snapshot.submitted_at or 0.0, next(self._seq), snapshot)
        self.extra[snapshot.id] = {}
        while len(self._jobs) > self._capacity:
            oldest = min(self._jobs.values(), key=lambda e: e[:2])[2]
            del self._jobs[oldest.id]
            self.extra.pop(oldest.id, None)

    def record_many(
        self, snapshots: list[JobSnapshot], messages: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        for snapshot in snapshots:
            self.record(snapshot)
            message = (messages or {}).get(snapshot.id)
            if message and snapshot.id in self._jobs:
                self.extra[snapshot.id]["message"] = copy.deepcopy(dict(message))

    def update(self, job_id: str, *, client: Any = None, **fields: Any) -> None:
        unknown = set(fields) - {f.name for f in dataclass_fields(JobSnapshot)} - set(MESSAGE_FIELDS)
        if unknown:
            raise ValueError(f"unknown tracking field {sorted(unknown)[0]!r}")
        if job_id in self._jobs:
            extra = {k: fields.pop(k) for k in MESSAGE_FIELDS if k in fields}
            for name, value in extra.items():
                if value in (None, ""):
                    self.extra[job_id].pop(name, None)
                else:
                    self.extra[job_id][name] = copy.deepcopy(value)
            submitted, seq, job = self._jobs[job_id]
            self._jobs[job_id] = (submitted, seq, replace(job, **fields))

    def message(self, job_id: str) -> dict[str, Any] | None:
        found = self.extra.get(job_id, {}).get("message")
        return copy.deepcopy(dict(found)) if found else None

    def mark_started(self, job_id: str, attempt_key: str, started_at: float) -> int:
        self.update(job_id, state=JobState.PROCESSING, started_at=started_at)
        self._starts[(job_id, attempt_key)] = self._starts.get((job_id, attempt_key), 0) + 1
        return self._starts[(job_id, attempt_key)]

    def get(self, job_id: str) -> JobSnapshot | None:
        entry = self._jobs.get(job_id)
        return entry[2] if entry else None

    def list(self, query: JobQuery) -> tuple[list[JobSnapshot], int]:
        matches = [
            s
            for s in self._newest_first()
            if (query.state is None or s.state is query.state)
            and (query.priority is None or s.priority is query.priority)
            and (query.target is None or s.target == query.target)
        ]
        return matches[: max(query.limit, 0)], len(matches)

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in JobState}
        for *_, s in self._jobs.values():
            counts[s.state.value] += 1
        return counts


class InMemoryDeduplicator:
    """Claims are ("pending", job, since) until marked, then ("enqueued", job, since)."""

    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._claims: dict[str, tuple[str, str, float, float]] = {}  # key -> (kind, job, since, expiry)

    def claim_many(self, claims: list[tuple[str, str]], window_s: float, grace_s: float) -> list[Claim]:
        now, result = self._clock(), []
        for key, job_id in claims:
            held = self._claims.get(key)
            if held is None or held[3] <= now:
                self._claims[key] = ("pending", job_id, now, now + window_s)
                result.append(Claim(ClaimStatus.NEW, job_id))
            elif held[0] == "enqueued":
                result.append(Claim(ClaimStatus.DUPLICATE, held[1]))
            elif now - held[2] >= grace_s:
                self._claims[key] = ("pending", held[1], now, held[3])
                result.append(Claim(ClaimStatus.TAKEN_OVER, held[1]))
            else:
                result.append(Claim(ClaimStatus.PENDING, held[1]))
        return result

    def mark_enqueued(self, claims: list[tuple[str, str]]) -> None:
        for key, job_id in claims:
            held = self._claims.get(key)
            if held and held[:2] == ("pending", job_id):
                self._claims[key] = ("enqueued", job_id, held[2], held[3])

    def release_many(self, claims: list[tuple[str, str]]) -> None:
        for key, job_id in claims:
            held = self._claims.get(key)
            if held and held[:2] == ("pending", job_id):
                del self._claims[key]
