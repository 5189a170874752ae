"""The dead-letter repository in memory, with the SQL repository's semantics."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from publishing.dlq import (
    DeadLetter,
    DLQFilter,
    DLQStats,
    ReplayResult,
    as_utc,
    canonical_id,
    not_found,
    page_bounds,
    replay_details,
    row_key,
)
from publishing.errors import (
    AlreadyReplayedError,
    DatabaseUnavailableError,
)


class InMemoryDeadLetterRepository:
    """``DeadLetterRepository`` in a dict, with the SQL repository's semantics: ids are UUIDs,
    timestamps come back in UTC, ``failed_after`` <= failed_at < ``failed_before``.

    Set ``unavailable`` to make every call raise ``DatabaseUnavailableError``, as the SQL
    repository does when the database is down.
    """

    def __init__(self) -> None:
        self._letters: dict[str, DeadLetter] = {}
        self._lock = threading.Lock()
        self.unavailable = False

    def _check(self) -> None:
        if self.unavailable:
            raise DatabaseUnavailableError()

    def _find(self, letter_id: str) -> DeadLetter:
        letter = self._letters.get(str(row_key(letter_id)))
        if letter is None:
            raise not_found(letter_id)
        return letter

    def write(self, letter: DeadLetter) -> bool:
        self._check()
        stored = replace(
            letter,
            id=canonical_id(letter.id),
            job_id=canonical_id(letter.job_id),
            replay_job_id=canonical_id(letter.replay_job_id) if letter.replay_job_id else None,
            replayed_from=canonical_id(letter.replayed_from) if letter.replayed_from else None,
            failed_at=as_utc(letter.failed_at),
            last_retry_at=as_utc(letter.last_retry_at),
            created_at=as_utc(letter.created_at or letter.failed_at),
            updated_at=as_utc(letter.updated_at or letter.created_at or letter.failed_at),
            replayed_at=as_utc(letter.replayed_at),
        )
        with self._lock:
            if any(existing.job_id == stored.job_id for existing in self._letters.values()):
                return False
            self._letters[stored.id] = stored
            return True

    def _matches(self, letter: DeadLetter, query: DLQFilter) -> bool:
        failed_after, failed_before = as_utc(query.failed_after), as_utc(query.failed_before)
        return (
            (query.target is None or letter.target_name == query.target)
            and (query.error_type is None or letter.error_type == query.error_type)
            and (query.priority is None or letter.priority == query.priority)
            and (query.replayed is None or letter.replayed == query.replayed)
            and (failed_after is None or letter.failed_at >= failed_after)
            and (failed_before is None or letter.failed_at < failed_before)
        )

    def read(self, query: DLQFilter, limit: int = 100, offset: int = 0) -> tuple[list[DeadLetter], int]:
        self._check()
        limit, offset = page_bounds(limit, offset)
        with self._lock:
            matches = sorted(
                (x for x in self._letters.values() if self._matches(x, query)), key=lambda x: x.id
            )
        matches.sort(key=lambda x: x.failed_at, reverse=True)
        return matches[offset : offset + limit], len(matches)

    def get(self, letter_id: str) -> DeadLetter:
        self._check()
        with self._lock:
            return self._find(letter_id)

    def claim_for_replay(self, letter_id: str, replay_job_id: str, now: datetime) -> DeadLetter:
        self._check()
        with self._lock:
            letter = self._find(letter_id)
            if letter.replayed:
                raise AlreadyReplayedError(letter.id, replay_details(letter))
            claimed = replace(
                letter,
                replayed=True,
                replayed_at=as_utc(now),
                replay_job_id=canonical_id(replay_job_id),
                updated_at=as_utc(now),
            )
            self._letters[letter.id] = claimed
            return claimed

    def release_claim(self, letter_id: str, replay_job_id: str, now: datetime) -> None:
        self._check()
        key, job_id = str(row_key(letter_id)), canonical_id(replay_job_id)
        with self._lock:
            # A row purged since its claim has nothing left to release, as in SQL.
            letter = self._letters.get(key)
            if letter is not None and letter.replay_job_id == job_id:
                self._letters[key] = replace(
                    letter,
                    replayed=False,
                    replayed_at=None,
                    replay_job_id=None,
                    replay_result=ReplayResult.SKIPPED,
                    updated_at=as_utc(now),
                )

    def set_replay_result(self, letter_id: str, result: ReplayResult, now: datetime) -> None:
        self._check()
        with self._lock:
            letter = self._find(letter_id)
            self._letters[letter.id] = replace(
                letter, replay_result=ReplayResult(result), updated_at=as_utc(now)
            )

    def set_replay_result_by_job(self, replay_job_id: str, result: ReplayResult, now: datetime) -> None:
        self._check()
        try:
            job_id = canonical_id(replay_job_id)
        except ValueError:
            return
        with self._lock:
            for key, letter in self._letters.items():
                if letter.replay_job_id == job_id:
                    self._letters[key] = replace(
                        letter, replay_result=ReplayResult(result), updated_at=as_utc(now)
                    )

    def purge(self, older_than: datetime, replayed_only: bool = False) -> int:
        self._check()
        cutoff = as_utc(older_than)
        with self._lock:
            doomed = [
                key
                for key, letter in self._letters.items()
                if letter.failed_at < cutoff and (letter.replayed or not replayed_only)
            ]
            for key in doomed:
                del self._letters[key]
        return len(doomed)

    def stats(self) -> DLQStats:
        self._check()
        with self._lock:
            letters = list(self._letters.values())
        by_error_type: dict[str, int] = {}
        by_target: dict[str, int] = {}
        by_priority: dict[str, int] = {}
        for x in letters:
            by_error_type[x.error_type.value] = by_error_type.get(x.error_type.value, 0) + 1
            by_target[x.target_name] = by_target.get(x.target_name, 0) + 1
            by_priority[x.priority.value] = by_priority.get(x.priority.value, 0) + 1
        failed = [x.failed_at for x in letters]
        return DLQStats(
            total=len(letters),
            by_error_type=by_error_type,
            by_target=by_target,
            by_priority=by_priority,
            oldest=min(failed, default=None),
            newest=max(failed, default=None),
            replayed=sum(1 for x in letters if x.replayed),
        )

    def count_by_target(self) -> dict[str, int]:
        return dict(self.stats().by_target)
