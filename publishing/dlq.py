"""The dead-letter queue (docs/design.md (Dead-letter queue)): the record of a job that failed for good, the query
over them, and the repository port. ``publishing.adapters.sql`` implements it with SQLAlchemy."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, overload

from publishing.classification import ErrorType
from publishing.errors import NotFoundError
from publishing.priority import Priority

MAX_PAGE = 1000


class ReplayResult(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class DeadLetter:
    """One row. ``target_config`` is the target as ``Target.to_public_dict`` shows it."""

    id: str
    job_id: str
    fingerprint: str
    target_name: str
    target_type: str
    enriched_alert: Mapping[str, Any]
    target_config: Mapping[str, Any]
    error_message: str
    error_type: ErrorType
    retry_count: int
    priority: Priority
    failed_at: datetime
    last_retry_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    replayed: bool = False
    replayed_at: datetime | None = None
    replay_result: ReplayResult | None = None
    replay_job_id: str | None = None
    replayed_from: str | None = None
    # The fallback target the job was last sent to, when its own target was down.
    delivered_via: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "job_id": self.job_id,
            "fingerprint": self.fingerprint,
            "target_name": self.target_name,
            "target_type": self.target_type,
            "enriched_alert": dict(self.enriched_alert),
            "target_config": dict(self.target_config),
            "error_message": self.error_message,
            "error_type": self.error_type.value,
            "retry_count": self.retry_count,
            "last_retry_at": iso(self.last_retry_at),
            "priority": self.priority.value,
            "failed_at": iso(self.failed_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "replayed": self.replayed,
            "replayed_at": iso(self.replayed_at),
            "replay_result": self.replay_result.value if self.replay_result else None,
            "replay_job_id": self.replay_job_id,
            "replayed_from": self.replayed_from,
            "delivered_via": self.delivered_via,
        }


def replay_details(letter: DeadLetter) -> dict[str, Any]:
    """What ``AlreadyReplayedError`` tells about the replay that got there first."""
    return {
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
        "replay_job_id": letter.replay_job_id,
        "replay_result": letter.replay_result.value if letter.replay_result else None,
    }


@overload
def as_utc(value: datetime) -> datetime: ...


@overload
def as_utc(value: None) -> None: ...


def as_utc(value: datetime | None) -> datetime | None:
    """The same instant in UTC. A naive value is taken to be UTC already: SQLite keeps no
    offset, and every timestamp the repository stores was written in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_id(value: str) -> uuid.UUID:
    """Row and job ids are UUIDs in any spelling (upper case, no hyphens); ``ValueError``
    when the value is not one."""
    return uuid.UUID(str(value))


def canonical_id(value: str) -> str:
    """The one spelling an id comes back in, whatever spelling it was written in."""
    return str(parse_id(value))


def not_found(letter_id: str) -> NotFoundError:
    return NotFoundError(f"no dead letter {letter_id!r}")


def row_key(letter_id: str) -> uuid.UUID:
    """A row id, or ``NotFoundError``: a malformed id names no row."""
    try:
        return parse_id(letter_id)
    except ValueError:
        raise not_found(letter_id) from None


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """``limit`` and ``offset`` as a repository applies them: 1..``MAX_PAGE`` rows, from 0 on."""
    return max(1, min(limit, MAX_PAGE)), max(0, offset)


@dataclass(frozen=True)
class DLQFilter:
    target: str | None = None
    error_type: ErrorType | None = None
    priority: Priority | None = None
    replayed: bool | None = None
    failed_after: datetime | None = None
    failed_before: datetime | None = None


@dataclass(frozen=True)
class DLQStats:
    total: int
    by_error_type: Mapping[str, int] = field(default_factory=dict)
    by_target: Mapping[str, int] = field(default_factory=dict)
    by_priority: Mapping[str, int] = field(default_factory=dict)
    oldest: datetime | None = None
    newest: datetime | None = None
    replayed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_error_type": dict(self.by_error_type),
            "by_target": dict(self.by_target),
            "by_priority": dict(self.by_priority),
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "replayed": self.replayed,
        }


class DeadLetterRepository(Protocol):
    def write(self, letter: DeadLetter) -> bool:
        """Store the row; idempotent on ``job_id`` (a redelivered job writes one row).
        Returns False when a row for that job already existed. Raises
        ``DatabaseUnavailableError`` when the database cannot be reached."""
        ...

    def read(self, query: DLQFilter, limit: int = 100, offset: int = 0) -> tuple[list[DeadLetter], int]:
        """Newest first; ``limit`` at most ``MAX_PAGE``; with the total count of matches."""
        ...

    def get(self, letter_id: str) -> DeadLetter:
        """Raises ``NotFoundError``."""
        ...

    def claim_for_replay(self, letter_id: str, replay_job_id: str, now: datetime) -> DeadLetter:
        """Atomically mark the row replayed (once): raises ``AlreadyReplayedError`` when it
        already was, ``NotFoundError`` when there is no such row."""
        ...

    def release_claim(self, letter_id: str, replay_job_id: str, now: datetime) -> None:
        """Undo a claim whose job never reached the broker: the row is unreplayed again (with
        ``replay_result = skipped`` saying so) and can be replayed later. A claim made for
        another job, or a row purged since, is left alone."""
        ...

    def set_replay_result(self, letter_id: str, result: ReplayResult, now: datetime) -> None: ...

    def set_replay_result_by_job(self, replay_job_id: str, result: ReplayResult, now: datetime) -> None:
        """Record how the job a replay created ended (delivered or failed again)."""
        ...

    def purge(self, older_than: datetime, replayed_only: bool = False) -> int: ...

    def stats(self) -> DLQStats: ...

    def count_by_target(self) -> dict[str, int]: ...
