# Over 300 lines: one in-memory fake a port, kept together so a test imports every fake from one place.
"""In-memory implementations of every port, for unit tests and local experiments.

They follow the same contracts as the Redis and SQL implementations: ``tests/contract`` runs
one suite over each fake and its Redis adapter.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from publishing.alert import EnrichedAlert
from publishing.breaker import (
    HALF_OPEN_RETRY_S,
    Admit,
    BreakerConfig,
    BreakerDecision,
    BreakerState,
    BreakerStatus,
    Defer,
    DeferReason,
    RateLimit,
    Transition,
)
from publishing.classification import ErrorType, classify_status
from publishing.delivery import Receipt
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
    PermanentPublishError,
    PublishError,
    RateLimitedError,
    TransientPublishError,
    UnknownPublishError,
)
from publishing.ordering import Gate, GateDecision
from publishing.replay import ReplayRun
from publishing.target_health import HealthEvent, TargetHealth
from publishing.targets import Target, check_target_set, parse_target
from publishing.tracking import Claim, ClaimStatus, JobQuery, JobSnapshot, JobState


class FrozenClock:
    """A clock that moves only when told: ``clock()`` is now in seconds."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    successes: int = 0
    opened_at: float | None = None
    probes: dict[str, float] = field(default_factory=dict)  # probe id -> lease expiry
    trips: int = 0
    recoveries: int = 0
    paused_until: float = 0.0
    down_since: float | None = None
    # The rate limiter's theoretical arrival time, in whole milliseconds as the Redis script
    # counts: float seconds drift, and a burst would lose its last attempt to rounding.
    tat_ms: int = 0


class InMemoryBreakerStore:
    """The breaker state machine of ``publishing.breaker`` in one process's memory, decision for
    decision as the Redis scripts take it (the contract tests run both)."""

    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _get(self, target: str) -> _Breaker:
        return self._breakers.setdefault(target, _Breaker())

    def _open(self, b: _Breaker, now: float) -> None:
        b.state, b.opened_at, b.successes, b.failures, b.probes = BreakerState.OPEN, now, 0, 0, {}
        b.down_since = now if b.down_since is None else b.down_since
        b.trips += 1

    def acquire(
        self, target: str, config: BreakerConfig, lease_s: float, rate: RateLimit | None = None
    ) -> BreakerDecision:
        with self._lock:
            b, now = self._get(target), self._clock()
            down_for = now - (b.down_since if b.down_since is not None else now)
            if b.paused_until > now:
                return Defer(b.paused_until - now, b.state, DeferReason.PAUSED, down_for)
            if b.state is BreakerState.OPEN:
                assert b.opened_at is not None
                reopen_at = b.opened_at + config.open_timeout_s
                if now < reopen_at:
                    return Defer(reopen_at - now, BreakerState.OPEN, DeferReason.BREAKER_OPEN, down_for)
                b.state, b.successes, b.probes = BreakerState.HALF_OPEN, 0, {}
            if b.state is BreakerState.HALF_OPEN:
                b.probes = {p: exp for p, exp in b.probes.items() if exp > now}
                if len(b.probes) >= config.half_open_probes:
                    wait_s = min(HALF_OPEN_RETRY_S, min(b.probes.values(), default=now) - now)
                    return Defer(wait_s, BreakerState.HALF_OPEN, DeferReason.PROBE_BUSY, down_for)
            if rate is not None:
                now_ms = round(now * 1000)
                tat_ms = max(b.tat_ms, now_ms)
                early_ms = tat_ms - now_ms - int(rate.tolerance_s * 1000)
                if early_ms > 0:
                    return Defer(early_ms / 1000, b.state, DeferReason.RATE_LIMITED, down_for)
                b.tat_ms = tat_ms + int(rate.interval_s * 1000)
            if b.state is BreakerState.CLOSED:
                return Admit(clean=b.failures == 0)
            probe_id = f"probe-{next(self._ids)}"
            b.probes[probe_id] = now + lease_s
            return Admit(probe_id)

    def pause(self, target: str, seconds: float) -> None:
        with self._lock:
            b = self._get(target)
            # Redis keeps a pause for at least a millisecond.
            b.paused_until = max(b.paused_until, self._clock() + max(seconds, 0.001))

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        with self._lock:
            b = self._get(target)
            if b.state is BreakerState.CLOSED:
                b.failures = 0
            elif b.state is BreakerState.HALF_OPEN and probe_id in b.probes:
                del b.probes[probe_id]
                b.successes += 1
                if b.successes >= config.success_threshold:
                    b.state, b.failures, b.successes, b.opened_at = BreakerState.CLOSED, 0, 0, None
                    b.down_since, b.probes = None, {}
                    b.recoveries += 1
                    return Transition.RECOVERED
            return Transition.NONE

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        with self._lock:
            b, now = self._get(target), self._clock()
            if b.state is BreakerState.CLOSED:
                b.failures += 1
                if b.failures >= config.failure_threshold:
                    self._open(b, now)
                    return Transition.TRIPPED
            elif b.state is BreakerState.HALF_OPEN and probe_id in b.probes:
                self._open(b, now)
                return Transition.TRIPPED
            return Transition.NONE

    def release(self, target: str, probe_id: str | None) -> None:
        with self._lock:
            if probe_id:
                self._get(target).probes.pop(probe_id, None)

    def status(self, target: str) -> BreakerStatus:
        with self._lock:
            b = self._get(target)
            return BreakerStatus(target, b.state, b.failures, b.successes, b.opened_at, b.trips, b.recoveries)

    def reset(self, target: str) -> None:
        with self._lock:
            old = self._get(target)
            # The rate limiter's schedule outlives a reset, as the Redis rate key does.
            self._breakers[target] = _Breaker(trips=old.trips, recoveries=old.recoveries, tat_ms=old.tat_ms)


class InMemoryJobTracker:
    """Jobs ordered as Redis orders them, by submission time; jobs submitted at the same
    instant keep the order they were recorded in (Redis breaks such ties by id)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._jobs: dict[str, tuple[float, int, JobSnapshot]] = {}  # id -> (submitted, seq, job)
        self._seq = itertools.count()
        self._starts: dict[tuple[str, str], int] = {}
        self._capacity = capacity

    def _newest_first(self) -> list[JobSnapshot]:
        return [job for *_, job in sorted(self._jobs.values(), key=lambda e: e[:2], reverse=True)]

    def record(self, snapshot: JobSnapshot) -> None:
        self._jobs[snapshot.id] = (snapshot.submitted_at or 0.0, next(self._seq), snapshot)
        while len(self._jobs) > self._capacity:
            oldest = min(self._jobs.values(), key=lambda e: e[:2])[2]
            del self._jobs[oldest.id]

    def record_many(self, snapshots: list[JobSnapshot]) -> None:
        for snapshot in snapshots:
            self.record(snapshot)

    def update(self, job_id: str, *, client: Any = None, **fields: Any) -> None:
        unknown = set(fields) - {f.name for f in dataclass_fields(JobSnapshot)}
        if unknown:
            raise ValueError(f"unknown tracking field {sorted(unknown)[0]!r}")
        if job_id in self._jobs:
            submitted, seq, job = self._jobs[job_id]
            self._jobs[job_id] = (submitted, seq, replace(job, **fields))

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


class InMemoryOrderGate:
    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._resolved_at: dict[tuple[str, str], float] = {}
        self._inflight: dict[tuple[str, str], tuple[str, float]] = {}

    def note_resolved(self, target: str, fingerprint: str, submitted_at: float) -> None:
        key = (target, fingerprint)
        self._resolved_at[key] = max(self._resolved_at.get(key, float("-inf")), submitted_at)

    def enter(
        self, target: str, fingerprint: str, job_id: str, firing: bool, submitted_at: float, lease_s: float
    ) -> GateDecision:
        key, now = (target, fingerprint), self._clock()
        if firing:
            if self._resolved_at.get(key, float("-inf")) >= submitted_at:
                return GateDecision(Gate.SUPERSEDED)
            self._inflight[key] = (job_id, now + lease_s)
            return GateDecision(Gate.GO)
        holder = self._inflight.get(key)
        if holder and holder[1] > now:
            return GateDecision(Gate.WAIT, holder[1] - now)
        return GateDecision(Gate.GO)

    def leave(self, target: str, fingerprint: str, job_id: str) -> None:
        if self._inflight.get((target, fingerprint), ("",))[0] == job_id:
            del self._inflight[(target, fingerprint)]


class InMemoryTargetHealth:
    # Breaker transitions kept per target, newest first, as the Redis list is trimmed.
    HISTORY_MAX = 50

    def __init__(self) -> None:
        self._health: dict[str, TargetHealth] = {}

    def record(
        self, target: str, events: list[HealthEvent], at: float, error: str | None = None, client: Any = None
    ) -> None:
        h = self._health.get(target, TargetHealth(target))
        counts, history = dict(h.counts), list(h.breaker_history)
        for event in events:
            counts[event.value] = counts.get(event.value, 0) + 1
            if event is HealthEvent.SUCCESS:
                h = replace(h, last_success_at=at)
            elif event is HealthEvent.FAILURE:
                h = replace(h, last_failure_at=at, last_error=error or None)
            elif event in (HealthEvent.TRIPPED, HealthEvent.RECOVERED):
                history.insert(0, {"event": event.value, "at": at})
        self._health[target] = replace(h, counts=counts, breaker_history=history[: self.HISTORY_MAX])

    def get(self, target: str) -> TargetHealth:
        return self._health.get(target, TargetHealth(target))


class InMemoryReplayRunStore:
    def __init__(self) -> None:
        self.runs: dict[str, ReplayRun] = {}

    def save(self, run: ReplayRun) -> None:
        self.runs[run.run_id] = run

    def get(self, run_id: str) -> ReplayRun | None:
        return self.runs.get(run_id)


class RecordingEnqueuer:
    """Collects the jobs a submission would send to the broker."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def enqueue(self, job: Any) -> None:
        self.sent.append(job)


# --- in-memory dead-letter repository ---


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


# --- a recording publisher ---

# How a status a target answers becomes an error, as ``publishing.adapters.http`` raises them.
_PUBLISH_ERRORS: dict[ErrorType, type[PublishError]] = {
    ErrorType.TRANSIENT: TransientPublishError,
    ErrorType.PERMANENT: PermanentPublishError,
    ErrorType.UNKNOWN: UnknownPublishError,
}


@dataclass(frozen=True)
class Answer:
    """What a scripted target answers: an HTTP status, with a Retry-After in seconds and a body
    when given, or (``refused``) no answer at all."""

    status: int = 200
    retry_after_s: float | None = None
    body: str = ""
    refused: bool = False


@dataclass(frozen=True)
class PublishCall:
    target: str
    job_id: str
    fingerprint: str


class RecordingPublisher:
    """``Publisher`` that records every call and answers from a script (the last answer
    repeats), failing as ``HttpPublisher`` does: 2xx is a ``Receipt``; 429, or 503 with a
    Retry-After, is ``RateLimitedError``; any other status the ``PublishError`` its
    classification names; a refused connection ``TransientPublishError``. Messages name the
    target and never hold its secrets."""

    def __init__(self, *answers: Answer | int, duration_s: float = 0.01) -> None:
        self.calls: list[PublishCall] = []
        self._answers = [Answer(a) if isinstance(a, int) else a for a in answers] or [Answer()]
        self._duration_s = duration_s
        self._lock = threading.Lock()

    def script(self, *answers: Answer | int) -> None:
        with self._lock:
            self._answers = [Answer(a) if isinstance(a, int) else a for a in answers] or [Answer()]

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        with self._lock:
            self.calls.append(PublishCall(target.name, job_id, enriched.alert.fingerprint))
            answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if answer.refused:
            raise TransientPublishError(f"request to target {target.name!r} failed: connection refused")
        if 200 <= answer.status < 300:
            return Receipt(answer.status, self._duration_s)
        message = f"HTTP {answer.status} from target {target.name!r}"
        if answer.body:
            excerpt = " ".join(answer.body.split()).replace(target.url, target.public_url)
            message += f": {target.redact(excerpt)[:200]}"
        if answer.status == 429 or (answer.status == 503 and answer.retry_after_s is not None):
            raise RateLimitedError(message, status_code=answer.status, retry_after_s=answer.retry_after_s)
        raise _PUBLISH_ERRORS[classify_status(answer.status)](message, status_code=answer.status)


# --- an in-memory target source ---


class InMemoryTargetSource:
    """``TargetSource`` over targets held as the raw mappings a targets file holds, so that a
    bad edit can be made as easily as a good one; ``load`` validates them as a file's are."""

    def __init__(self, targets: Iterable[Mapping[str, Any]] = ()) -> None:
        self._raw = [dict(t) for t in targets]
        self._version = 0
        self.loads = 0

    def edit(self, targets: Iterable[Mapping[str, Any]]) -> None:
        """Swap in a new set, as an operator editing the targets file would."""
        self._raw = [dict(t) for t in targets]
        self._version += 1

    def signature(self) -> object:
        return self._version

    def load(self) -> list[Target]:
        self.loads += 1
        return check_target_set([parse_target(raw, f"targets[{i}]") for i, raw in enumerate(self._raw)])
