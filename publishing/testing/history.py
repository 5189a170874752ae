"""An in-memory delivery history, following the same contract as the SQL repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from publishing.dlq import as_utc
from publishing.errors import DatabaseUnavailableError
from publishing.history import MAX_BATCH, AttemptRecord, HistoryQuery, history_not_found


class InMemoryHistoryRepository:
    def __init__(self) -> None:
        self.records: dict[str, AttemptRecord] = {}
        self.alerts: dict[str, Mapping[str, Any]] = {}
        # Set to act as if the database were unreachable.
        self.unavailable = False

    def _check(self) -> None:
        if self.unavailable:
            raise DatabaseUnavailableError("the history database cannot be reached (fake)")

    def append(self, records: Sequence[AttemptRecord]) -> int:
        self._check()
        assert len(records) <= MAX_BATCH
        added = 0
        for record in records:
            if record.alert is not None:
                self.alerts.setdefault(record.job_id, record.alert)
            if record.id not in self.records:
                self.records[record.id] = replace(record, alert=None)
                added += 1
        return added

    def _newest_first(self, records: list[AttemptRecord]) -> list[AttemptRecord]:
        return sorted(records, key=lambda r: (as_utc(r.attempted_at), r.attempt, r.id), reverse=True)

    def query(
        self, query: HistoryQuery, limit: int = 100, offset: int = 0
    ) -> tuple[list[AttemptRecord], int]:
        self._check()
        found = self._newest_first([r for r in self.records.values() if query.matches(r)])
        return found[offset : offset + limit], len(found)

    def attempts_of(self, job_id: str) -> list[AttemptRecord]:
        self._check()
        return list(reversed(self._newest_first([r for r in self.records.values() if r.job_id == job_id])))

    def get(self, attempt_id: str) -> AttemptRecord:
        self._check()
        record = self.records.get(attempt_id)
        if record is None:
            raise history_not_found(attempt_id)
        return replace(record, alert=self.alerts.get(record.job_id))

    def prune(self, before: datetime, batch: int = MAX_BATCH) -> int:
        self._check()
        old = [r for r in self.records.values() if as_utc(r.attempted_at) < as_utc(before)][:batch]
        for record in old:
            del self.records[record.id]
        kept = {r.job_id for r in self.records.values()}
        for job_id in [j for j in self.alerts if j not in kept]:
            del self.alerts[job_id]
        return len(old)
