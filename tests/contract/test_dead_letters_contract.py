"""The ``DeadLetterRepository`` contract, held by the in-memory fake and by the SQL repository on
SQLite and PostgreSQL alike: unit tests that stand on the fake then prove what production does."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DeadLetterRepository, DLQFilter, ReplayResult
from publishing.errors import AlreadyReplayedError, DatabaseUnavailableError, NotFoundError
from publishing.priority import Priority
from publishing.testing import InMemoryDeadLetterRepository
from tests.contract.sql_fixtures import (
    UNREACHABLE_POSTGRES_URL,
    empty,
    postgres_engine,
    sqlite_engine,
    unreachable_sqlite_url,
)

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


def make_letter(**overrides: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_id": str(uuid.uuid4()),
        "fingerprint": "fp-1",
        "target_name": "ops-webhook",
        "target_type": "webhook",
        "enriched_alert": {
            "alert": {"fingerprint": "fp-1", "alert_name": "HighCPU", "labels": {"severity": "critical"}},
            "classification": {"severity": "critical", "recommendations": ["scale out"]},
        },
        "target_config": {"name": "ops-webhook", "bearer_token": "***", "headers": {}},
        "error_message": "HTTP 503 from target",
        "error_type": ErrorType.TRANSIENT,
        "retry_count": 5,
        "priority": Priority.HIGH,
        "failed_at": BASE,
        "last_retry_at": BASE - timedelta(seconds=30),
    }
    values.update(overrides)
    return DeadLetter(**values)


def new_id() -> str:
    return str(uuid.uuid4())


# --- the implementations ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_dlq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with sqlite_engine(tmp_path_factory.mktemp("dlq")) as engine:
        yield engine


@pytest.fixture(scope="module")
def postgresql_dlq() -> Iterator[Engine]:
    with postgres_engine() as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def repo(request: pytest.FixtureRequest) -> DeadLetterRepository:
    if request.param == "memory":
        return InMemoryDeadLetterRepository()
    engine: Engine = request.getfixturevalue(f"{request.param}_dlq")
    empty(engine)
    return SqlDeadLetterRepository(engine)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def unavailable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterRepository]:
    """The repository with its database gone: the fake told so, SQL pointed at nothing."""
    if request.param == "memory":
        fake = InMemoryDeadLetterRepository()
        fake.unavailable = True
        yield fake
        return
    url = UNREACHABLE_POSTGRES_URL if request.param == "postgresql" else unreachable_sqlite_url(tmp_path)
    engine = create_engine_for(url)
    try:
        yield SqlDeadLetterRepository(engine)
    finally:
        engine.dispose()


# --- write and get ------------------------------------------------------------------------


def test_write_then_get_round_trips_every_field(repo: DeadLetterRepository) -> None:
    letter = make_letter(replayed_from=new_id(), delivered_via="backup-webhook")

    assert repo.write(letter) is True
    stored = repo.get(letter.id)

    assert stored.to_dict() | {"created_at": None, "updated_at": None} == letter.to_dict()
    assert stored.created_at is not None and stored.created_at.utcoffset() == timedelta(0)
    assert stored.updated_at is not None and stored.updated_at.utcoffset() == timedelta(0)


def test_ids_come_back_in_one_spelling(repo: DeadLetterRepository) -> None:
    letter_id, job_id, origin = new_id(), new_id(), new_id()
    repo.write(make_letter(id=letter_id.upper(), job_id=job_id.upper(), replayed_from=origin.upper()))

    for spelling in (letter_id, letter_id.upper(), letter_id.replace("-", "")):
        stored = repo.get(spelling)
        assert (stored.id, stored.job_id, stored.replayed_from) == (letter_id, job_id, origin)


def test_timestamps_come_back_in_utc(repo: DeadLetterRepository) -> None:
    # An aware time in another zone keeps its instant; a naive one is taken to be UTC.
    letter = make_letter(
        failed_at=datetime(2025, 3, 1, 13, 0, tzinfo=PARIS), last_retry_at=datetime(2025, 3, 1, 11, 0)
    )
    repo.write(letter)

    claimed = repo.claim_for_replay(letter.id, new_id(), NOW.astimezone(PARIS))
    stored = repo.get(letter.id)

    assert (stored.failed_at, stored.last_retry_at) == (BASE, BASE - timedelta(hours=1))
    assert (claimed.replayed_at, stored.replayed_at, stored.updated_at) == (NOW, NOW, NOW)
    for value in (stored.failed_at, stored.last_retry_at, stored.replayed_at, stored.updated_at):
        assert value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_a_redelivered_job_writes_one_row(repo: DeadLetterRepository) -> None:
    first = make_letter()
    again = make_letter(job_id=first.job_id.upper(), error_message="second attempt")

    assert repo.write(first) is True
    assert repo.write(again) is False

    letters, total = repo.read(DLQFilter())
    assert total == 1
    assert [x.id for x in letters] == [first.id]
    assert letters[0].error_message == "HTTP 503 from target"
    with pytest.raises(NotFoundError):
        repo.get(again.id)


@pytest.mark.parametrize("letter_id", [new_id(), "not-a-uuid", ""])
def test_get_of_an_unknown_or_malformed_id_is_not_found(repo: DeadLetterRepository, letter_id: str) -> None:
    repo.write(make_letter())

    with pytest.raises(NotFoundError):
        repo.get(letter_id)


# --- read ---------------------------------------------------------------------------------


def _population(repo: DeadLetterRepository) -> None:
    """Five rows an hour apart, "a" the oldest; "d" replayed."""
    rows = [
        ("a", "pd", ErrorType.PERMANENT, Priority.HIGH, 0),
        ("b", "pd", ErrorType.TRANSIENT, Priority.MEDIUM, 1),
        ("c", "slack", ErrorType.TRANSIENT, Priority.LOW, 2),
        ("d", "slack", ErrorType.UNKNOWN, Priority.HIGH, 3),
        ("e", "hook", ErrorType.TRANSIENT, Priority.MEDIUM, 4),
    ]
    for fingerprint, target, error_type, priority, hours in rows:
        repo.write(
            make_letter(
                fingerprint=fingerprint,
                target_name=target,
                error_type=error_type,
                priority=priority,
                failed_at=BASE + timedelta(hours=hours),
            )
        )
    (d,), _ = repo.read(DLQFilter(target="slack", priority=Priority.HIGH))
    repo.claim_for_replay(d.id, new_id(), NOW)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (DLQFilter(), "edcba"),
        (DLQFilter(target="pd"), "ba"),
        (DLQFilter(error_type=ErrorType.TRANSIENT), "ecb"),
        (DLQFilter(priority=Priority.HIGH), "da"),
        (DLQFilter(replayed=True), "d"),
        (DLQFilter(replayed=False), "ecba"),
        (DLQFilter(failed_after=BASE + timedelta(hours=2)), "edc"),
        (DLQFilter(failed_before=BASE + timedelta(hours=2)), "ba"),
        (DLQFilter(failed_after=BASE + timedelta(hours=1), failed_before=BASE + timedelta(hours=4)), "dcb"),
        (DLQFilter(failed_after=(BASE + timedelta(hours=2)).astimezone(PARIS)), "edc"),
        (DLQFilter(target="slack", error_type=ErrorType.TRANSIENT, replayed=False), "c"),
        (DLQFilter(target="nobody"), ""),
    ],
)
def test_read_filters_newest_first(repo: DeadLetterRepository, query: DLQFilter, expected: str) -> None:
    _population(repo)

    letters, total = repo.read(query)

    assert "".join(x.fingerprint for x in letters) == expected
    assert total == len(expected)


def test_read_pages_newest_first_with_the_total(repo: DeadLetterRepository) -> None:
    _population(repo)

    pages = [repo.read(DLQFilter(), limit=2, offset=offset) for offset in (0, 2, 4, 6)]

    assert ["".join(x.fingerprint for x in page) for page, _ in pages] == ["ed", "cb", "a", ""]
    assert {total for _, total in pages} == {5}


def test_read_clamps_limit_and_offset(repo: DeadLetterRepository) -> None:
    _population(repo)

    assert len(repo.read(DLQFilter(), limit=0)[0]) == 1
    assert len(repo.read(DLQFilter(), limit=10_000, offset=-3)[0]) == 5


def test_read_orders_by_failed_at_then_id(repo: DeadLetterRepository) -> None:
    # Rows failing at the same instant keep one order, so that paging never skips or repeats one.
    letters = [make_letter(failed_at=BASE + timedelta(hours=i % 2)) for i in range(6)]
    for letter in letters:
        repo.write(letter)

    pages = [repo.read(DLQFilter(), limit=4, offset=offset)[0] for offset in (0, 4)]

    expected = sorted(letters, key=lambda x: (-x.failed_at.timestamp(), x.id))
    assert [x.id for page in pages for x in page] == [x.id for x in expected]


# --- replay -------------------------------------------------------------------------------


def test_a_row_is_claimed_for_replay_once(repo: DeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    first_job, second_job = new_id(), new_id()

    claimed = repo.claim_for_replay(letter.id, first_job, NOW)

    assert (claimed.replayed, claimed.replayed_at, claimed.replay_job_id) == (True, NOW, first_job)
    assert claimed.updated_at == NOW
    with pytest.raises(AlreadyReplayedError) as raised:
        repo.claim_for_replay(letter.id, second_job, NOW + timedelta(minutes=1))
    assert raised.value.dead_letter_id == letter.id
    assert raised.value.details == {
        "replayed_at": NOW.isoformat(),
        "replay_job_id": first_job,
        "replay_result": None,
    }
    assert repo.get(letter.id).replay_job_id == first_job


def test_already_replayed_tells_how_the_replay_ended(repo: DeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    replay_job = new_id()
    repo.claim_for_replay(letter.id, replay_job, NOW)
    repo.set_replay_result_by_job(replay_job, ReplayResult.SUCCESS, NOW + timedelta(seconds=5))

    with pytest.raises(AlreadyReplayedError) as raised:
        repo.claim_for_replay(letter.id, new_id(), NOW + timedelta(minutes=1))

    assert raised.value.details["replay_result"] == "success"
    assert raised.value.details["replay_job_id"] == replay_job


@pytest.mark.parametrize("letter_id", [new_id(), "not-a-uuid"])
def test_claiming_an_unknown_row_is_not_found(repo: DeadLetterRepository, letter_id: str) -> None:
    with pytest.raises(NotFoundError):
        repo.claim_for_replay(letter_id, new_id(), NOW)


def test_a_claim_is_released_only_by_its_own_job(repo: DeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    lost_job, other_job, next_job = new_id(), new_id(), new_id()
    repo.claim_for_replay(letter.id, lost_job, NOW)

    repo.release_claim(letter.id, other_job, NOW + timedelta(seconds=1))
    assert repo.get(letter.id).replay_job_id == lost_job
    repo.release_claim(letter.id, lost_job.upper(), NOW + timedelta(seconds=2))

    released = repo.get(letter.id)
    assert (released.replayed, released.replay_job_id, released.replayed_at) == (False, None, None)
    assert released.replay_result is ReplayResult.SKIPPED
    assert released.updated_at == NOW + timedelta(seconds=2)
    assert repo.claim_for_replay(letter.id, next_job, NOW).replay_job_id == next_job


def test_releasing_a_claim_on_a_purged_row_changes_nothing(repo: DeadLetterRepository) -> None:
    repo.release_claim(new_id(), new_id(), NOW)

    assert repo.read(DLQFilter()) == ([], 0)


def test_concurrent_claims_have_exactly_one_winner(repo: DeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    start = threading.Barrier(8)
    winners: list[str] = []
    losers: list[str] = []
    unexpected: list[BaseException] = []

    def claim() -> None:
        job_id = new_id()
        start.wait()
        try:
            repo.claim_for_replay(letter.id, job_id, NOW)
            winners.append(job_id)
        except AlreadyReplayedError:
            losers.append(job_id)
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert unexpected == []
    assert (len(winners), len(losers)) == (1, 7)
    assert repo.get(letter.id).replay_job_id == winners[0]


def test_replay_results_are_recorded(repo: DeadLetterRepository) -> None:
    by_id, by_job, untouched = make_letter(), make_letter(), make_letter()
    for letter in (by_id, by_job, untouched):
        repo.write(letter)
    replay_job = new_id()
    repo.claim_for_replay(by_job.id, replay_job, NOW)

    repo.set_replay_result(by_id.id, ReplayResult.SKIPPED, NOW)
    repo.set_replay_result_by_job(replay_job, ReplayResult.SUCCESS, NOW + timedelta(seconds=5))
    # A job no row names (not a replay, or its row purged since) changes nothing.
    repo.set_replay_result_by_job(new_id(), ReplayResult.FAILED, NOW)
    repo.set_replay_result_by_job("not-a-uuid", ReplayResult.FAILED, NOW)

    assert repo.get(by_id.id).replay_result is ReplayResult.SKIPPED
    assert repo.get(by_id.id).updated_at == NOW
    assert repo.get(by_job.id).replay_result is ReplayResult.SUCCESS
    assert repo.get(by_job.id).updated_at == NOW + timedelta(seconds=5)
    assert repo.get(untouched.id).replay_result is None


@pytest.mark.parametrize("letter_id", [new_id(), "not-a-uuid"])
def test_a_result_for_an_unknown_row_is_not_found(repo: DeadLetterRepository, letter_id: str) -> None:
    with pytest.raises(NotFoundError):
        repo.set_replay_result(letter_id, ReplayResult.FAILED, NOW)


# --- purge and counts ---------------------------------------------------------------------


def test_purge_by_age_and_replayed_only(repo: DeadLetterRepository) -> None:
    cutoff = BASE - timedelta(days=7)
    old_replayed = make_letter(failed_at=BASE - timedelta(days=10))
    old = make_letter(failed_at=BASE - timedelta(days=9))
    at_cutoff = make_letter(failed_at=cutoff)
    recent_replayed = make_letter(failed_at=BASE)
    for letter in (old_replayed, old, at_cutoff, recent_replayed):
        repo.write(letter)
    for letter in (old_replayed, recent_replayed):
        repo.claim_for_replay(letter.id, new_id(), NOW)

    assert repo.purge(cutoff.astimezone(PARIS), replayed_only=True) == 1
    assert repo.purge(cutoff) == 1
    assert repo.purge(cutoff) == 0

    remaining, total = repo.read(DLQFilter())
    assert (total, [x.id for x in remaining]) == (2, [recent_replayed.id, at_cutoff.id])


def test_stats_and_count_by_target(repo: DeadLetterRepository) -> None:
    _population(repo)

    stats = repo.stats()

    assert stats.total == 5
    assert stats.by_error_type == {"permanent": 1, "transient": 3, "unknown": 1}
    assert stats.by_target == {"pd": 2, "slack": 2, "hook": 1}
    assert stats.by_priority == {"high": 2, "medium": 2, "low": 1}
    assert (stats.oldest, stats.newest) == (BASE, BASE + timedelta(hours=4))
    assert stats.oldest is not None and stats.oldest.utcoffset() == timedelta(0)
    assert stats.replayed == 1
    assert repo.count_by_target() == {"pd": 2, "slack": 2, "hook": 1}


def test_stats_of_an_empty_queue(repo: DeadLetterRepository) -> None:
    stats = repo.stats()

    assert (stats.total, stats.oldest, stats.newest, stats.replayed) == (0, None, None, 0)
    assert stats.by_target == {} and repo.count_by_target() == {}


# --- an unreachable database --------------------------------------------------------------


def _every_call(repo: DeadLetterRepository) -> list[Callable[[], object]]:
    letter = make_letter()
    return [
        lambda: repo.write(letter),
        lambda: repo.read(DLQFilter()),
        lambda: repo.get(letter.id),
        lambda: repo.claim_for_replay(letter.id, new_id(), NOW),
        lambda: repo.release_claim(letter.id, new_id(), NOW),
        lambda: repo.set_replay_result(letter.id, ReplayResult.FAILED, NOW),
        lambda: repo.set_replay_result_by_job(new_id(), ReplayResult.FAILED, NOW),
        lambda: repo.purge(NOW),
        lambda: repo.stats(),
        lambda: repo.count_by_target(),
    ]


def test_an_unreachable_database_is_reported_as_unavailable(unavailable: DeadLetterRepository) -> None:
    for call in _every_call(unavailable):
        with pytest.raises(DatabaseUnavailableError):
            call()


# --- rows a database would refuse ---------------------------------------------------------


def _deep(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["m"] = {}
        node = node["m"]
    return root


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"enriched_alert": {"alert": {"enrichment_metadata": _deep(3_000)}}}, id="deep"),
        pytest.param({"enriched_alert": {"alert": {"score": float("nan")}}}, id="nan"),
        pytest.param(
            {"fingerprint": "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(4_000))}, id="long"
        ),
    ],
)
def test_any_letter_is_written_once_and_found(repo: DeadLetterRepository, overrides: dict[str, Any]) -> None:
    """Whatever a job carried, its row is stored (SQL keeps what it cannot store as text)."""
    letter = make_letter(**overrides)

    assert repo.write(letter) is True
    assert repo.write(letter) is False

    stored = repo.get(letter.id)
    assert stored.job_id == letter.job_id
    assert stored.error_type is letter.error_type
    assert repo.read(DLQFilter(target="ops-webhook"))[1] == 1
