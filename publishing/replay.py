# Over 300 lines: replay one and replay many share the claim and the run's record.
"""Replaying dead letters (docs/design.md (Dead-letter queue)): one row at a time behind an atomic claim, or many in
pages as a run whose progress is a value the caller stores. The broker and the progress
store are handed in; ``workers.replay`` runs the pages in the background.

If the job cannot be enqueued after its row was claimed, the claim is released: the row is
unreplayed again with ``replay_result = skipped`` (and the tracked job is marked failed), so
it can simply be replayed once the broker is back; the caller answers 503.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from publishing.alert import EnrichedAlert
from publishing.classification import ErrorType
from publishing.dlq import MAX_PAGE, DeadLetter, DeadLetterRepository, DLQFilter, replay_details
from publishing.errors import (
    AlreadyReplayedError,
    InvalidAlertError,
    NotFoundError,
    PublishingError,
    UnknownTargetError,
)
from publishing.job import Job
from publishing.ordering import OrderGate
from publishing.priority import Priority
from publishing.submission import Enqueuer, Submitter
from publishing.targets import Target, TargetRegistry
from publishing.tracking import Deduplicator, JobState, JobTracker

log = logging.getLogger(__name__)

# Rows a page of a bulk run replays: small enough that a worker slot is free again within
# a second or so, so a bulk run never holds a slot a high job could use for long.
PAGE_SIZE = 100


class ReplayRefusedError(PublishingError):
    """That dead letter cannot be replayed now (its target is gone or disabled, or the stored
    alert no longer parses). The row is left unreplayed."""

    def __init__(self, dead_letter_id: str, reason: str) -> None:
        self.dead_letter_id = dead_letter_id
        self.reason = reason
        super().__init__(f"dead letter {dead_letter_id} cannot be replayed: {reason}")


class ReplayEnqueueError(PublishingError):
    """The replayed job could not be handed to the broker after its row was claimed; the claim
    was released and the row marked ``replay_result = skipped``."""

    def __init__(self, dead_letter_id: str, job_id: str) -> None:
        self.dead_letter_id = dead_letter_id
        self.job_id = job_id
        super().__init__(
            f"dead letter {dead_letter_id} was claimed but its job {job_id} could not be enqueued; "
            "the row is replayable again (replay_result=skipped)"
        )


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def filter_to_dict(query: DLQFilter) -> dict[str, Any]:
    """The filter as JSON values, leaving out what is not set."""
    values: dict[str, Any] = {
        "target": query.target,
        "error_type": query.error_type.value if query.error_type else None,
        "priority": query.priority.value if query.priority else None,
        "replayed": query.replayed,
        "failed_after": query.failed_after.isoformat() if query.failed_after else None,
        "failed_before": query.failed_before.isoformat() if query.failed_before else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def filter_from_dict(data: Mapping[str, Any]) -> DLQFilter:
    def when(key: str) -> datetime | None:
        value = data.get(key)
        return datetime.fromisoformat(value) if value else None

    return DLQFilter(
        target=data.get("target"),
        error_type=ErrorType(data["error_type"]) if data.get("error_type") else None,
        priority=Priority(data["priority"]) if data.get("priority") else None,
        replayed=data.get("replayed"),
        failed_after=when("failed_after"),
        failed_before=when("failed_before"),
    )


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds is not None else None


@dataclass(frozen=True)
class ReplayRun:
    """A bulk replay and its progress. ``done`` rows were replayed, ``failed`` could not be
    (they stay unreplayed), ``skipped`` were replayed or purged by someone else meanwhile.

    ``cut`` is when the run was created: rows that fail after it (among them the run's own
    jobs failing again) are not part of the run, so a run always ends.
    """

    run_id: str
    query: DLQFilter
    cut: datetime
    dry_run: bool = False
    state: RunState = RunState.QUEUED
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    # Visited rows that are still unreplayed: they precede the unvisited ones in the
    # repository's order (failed_at desc, id), so this is the offset of the next page.
    kept: int = 0
    pages: int = 0
    started_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in (RunState.DONE, RunState.FAILED)

    @property
    def scope(self) -> DLQFilter:
        """The rows the run replays: unreplayed ones matching the query that failed before the cut."""
        before = self.cut if self.query.failed_before is None else min(self.query.failed_before, self.cut)
        return replace(self.query, replayed=False, failed_before=before)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "state": self.state.value,
            "dry_run": self.dry_run,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "filters": filter_to_dict(self.query),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
        }

    def to_record(self) -> dict[str, str]:
        """Flat strings, for a Redis hash."""
        return {
            "run_id": self.run_id,
            "query": json.dumps(filter_to_dict(self.query)),
            "cut": self.cut.isoformat(),
            "dry_run": "1" if self.dry_run else "0",
            "state": self.state.value,
            "total": str(self.total),
            "done": str(self.done),
            "failed": str(self.failed),
            "skipped": str(self.skipped),
            "kept": str(self.kept),
            "pages": str(self.pages),
            "started_at": repr(self.started_at),
            "finished_at": "" if self.finished_at is None else repr(self.finished_at),
            "error": self.error or "",
        }

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> ReplayRun:
        return cls(
            run_id=record["run_id"],
            query=filter_from_dict(json.loads(record["query"])),
            cut=datetime.fromisoformat(record["cut"]),
            dry_run=record.get("dry_run") == "1",
            state=RunState(record["state"]),
            total=int(record.get("total") or 0),
            done=int(record.get("done") or 0),
            failed=int(record.get("failed") or 0),
            skipped=int(record.get("skipped") or 0),
            kept=int(record.get("kept") or 0),
            pages=int(record.get("pages") or 0),
            started_at=float(record.get("started_at") or 0),
            finished_at=float(record["finished_at"]) if record.get("finished_at") else None,
            error=record.get("error") or None,
        )


class ReplayRunStore(Protocol):
    def save(self, run: ReplayRun) -> None: ...

    def get(self, run_id: str) -> ReplayRun | None: ...


class ReplayRunner(Protocol):
    def start(self, run: ReplayRun) -> None:
        """Run the (saved) replay run in the background, page by page."""
        ...


class Replayer:
    """The replay use cases over the DLQ repository and the submission port."""

    def __init__(
        self,
        dead_letters: DeadLetterRepository,
        registry: TargetRegistry,
        tracker: JobTracker,
        deduplicator: Deduplicator,
        enqueuer: Enqueuer,
        *,
        order_gate: OrderGate | None = None,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._dead_letters = dead_letters
        # Replays are never de-duplicated: an operator asking twice means it. The submitter
        # holds the registry, tracker, clock and ids a replay uses too.
        self._submitter = Submitter(
            registry,
            tracker,
            deduplicator,
            enqueuer,
            order_gate=order_gate,
            dedup_window_s=0,
            clock=clock,
            new_id=new_id,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._submitter.clock(), UTC)

    def replay_one(self, letter_id: str) -> Job:
        """Raises ``NotFoundError``, ``AlreadyReplayedError``, ``ReplayRefusedError``,
        ``ReplayEnqueueError`` or ``DatabaseUnavailableError``."""
        letter = self._dead_letters.get(letter_id)
        if letter.replayed:
            raise AlreadyReplayedError(letter.id, replay_details(letter))
        return self._replay(letter)

    def _prepare(self, letter: DeadLetter) -> tuple[EnrichedAlert, Target]:
        try:
            target = self._submitter.registry.get(letter.target_name)
        except UnknownTargetError:
            raise ReplayRefusedError(
                letter.id, f"target {letter.target_name!r} is no longer configured"
            ) from None
        if not target.enabled:
            raise ReplayRefusedError(letter.id, f"target {target.name!r} is disabled")
        try:
            enriched = EnrichedAlert.from_dict(letter.enriched_alert)
        except InvalidAlertError as exc:
            raise ReplayRefusedError(letter.id, f"the stored alert is not valid: {exc}") from None
        return enriched, target

    def _replay(self, letter: DeadLetter) -> Job:
        # Checked before the claim, so that a row that cannot go anywhere stays replayable.
        enriched, target = self._prepare(letter)
        job_id = self._submitter.new_id()
        self._dead_letters.claim_for_replay(letter.id, job_id, self._now())
        try:
            return self._submitter.submit_job(enriched, target, replayed_from=letter.id, job_id=job_id)
        except Exception as exc:
            self._abandon(letter.id, job_id, exc)
            raise ReplayEnqueueError(letter.id, job_id) from exc

    def _abandon(self, letter_id: str, job_id: str, exc: Exception) -> None:
        log.warning(
            "replay of dead letter %s: job %s could not be enqueued (%s); releasing the claim",
            letter_id,
            job_id,
            type(exc).__name__,
        )
        try:
            self._dead_letters.release_claim(letter_id, job_id, self._now())
        except PublishingError:
            log.error("could not release the replay claim on dead letter %s", letter_id)
        try:
            self._submitter.tracker.update(
                job_id, state=JobState.FAILED, last_error="the replayed job could not be enqueued"
            )
        except Exception:
            # The broker and tracking share Redis: when one is down the other usually is too.
            log.debug("could not mark job %s failed in tracking", job_id)

    def new_run(self, query: DLQFilter, *, dry_run: bool) -> ReplayRun:
        """A run over the unreplayed rows matching ``query`` now, with their count."""
        started = self._submitter.clock()
        run = ReplayRun(
            run_id=uuid.uuid4().hex,
            query=replace(query, replayed=None),
            cut=datetime.fromtimestamp(started, UTC),
            dry_run=dry_run,
            started_at=started,
        )
        _, total = self._dead_letters.read(run.scope, limit=1)
        if dry_run:
            return replace(run, total=total, state=RunState.DONE, finished_at=self._submitter.clock())
        return replace(run, total=total)

    def preview(self, run: ReplayRun, limit: int = MAX_PAGE) -> list[str]:
        """The ids of the rows the run would replay, newest first (at most ``limit``)."""
        rows, _ = self._dead_letters.read(run.scope, limit=limit)
        return [row.id for row in rows]

    def replay_page(self, run: ReplayRun, page_size: int = PAGE_SIZE) -> ReplayRun:
        """Replay the next page of the run; the returned run says whether it has finished.
        ``DatabaseUnavailableError`` propagates: the page can simply be run again."""
        rows, _ = self._dead_letters.read(run.scope, limit=page_size, offset=run.kept)
        done, failed, skipped, kept, error = run.done, run.failed, run.skipped, run.kept, run.error
        for letter in rows:
            try:
                self._replay(letter)
            except ReplayRefusedError as exc:
                failed, kept, error = failed + 1, kept + 1, exc.reason
            except (AlreadyReplayedError, NotFoundError):
                skipped += 1
            except ReplayEnqueueError as exc:
                # The broker is down: every further row would fail the same way.
                return replace(
                    run,
                    state=RunState.FAILED,
                    done=done,
                    failed=failed + 1,
                    skipped=skipped,
                    kept=kept,
                    pages=run.pages + 1,
                    finished_at=self._submitter.clock(),
                    error=str(exc),
                )
            else:
                done += 1
        finished = len(rows) < page_size
        return replace(
            run,
            state=RunState.DONE if finished else RunState.RUNNING,
            done=done,
            failed=failed,
            skipped=skipped,
            kept=kept,
            pages=run.pages + 1,
            finished_at=self._submitter.clock() if finished else None,
            error=error,
        )
