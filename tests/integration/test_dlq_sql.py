"""The SQL dead-letter repository against a real PostgreSQL database and a SQLite file, each
created by the project's Alembic migration, held to the same contract."""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import Engine

from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for, publishing_dlq
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter, ReplayResult
from publishing.errors import AlreadyReplayedError, DatabaseUnavailableError, NotFoundError
from publishing.priority import Priority

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI), cmd_opts=argparse.Namespace(x=[f"url={url}"]))
    config.attributes["configure_logger"] = False
    return config


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


@pytest.fixture(scope="module")
def migrated_postgres(postgres_url: str) -> Iterator[Engine]:
    alembic.command.upgrade(alembic_config(postgres_url), "head")
    engine = create_engine_for(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgresql":
        engine: Engine = request.getfixturevalue("migrated_postgres")
        with engine.begin() as conn:
            conn.execute(sa.delete(publishing_dlq))
        yield engine
        return
    # A directory that does not exist yet: create_engine_for makes it.
    url = f"sqlite:///{tmp_path / 'var' / 'dlq.db'}"
    alembic.command.upgrade(alembic_config(url), "head")
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> SqlDeadLetterRepository:
    return SqlDeadLetterRepository(engine)


def test_write_then_get_round_trips_every_field(repo: SqlDeadLetterRepository) -> None:
    letter = make_letter(replayed_from=str(uuid.uuid4()))

    assert repo.write(letter) is True
    stored = repo.get(letter.id)

    assert stored.to_dict() | {"created_at": None, "updated_at": None} == letter.to_dict()
    assert stored.created_at is not None and stored.created_at.tzinfo is not None
    assert stored.updated_at is not None and stored.updated_at.utcoffset() == timedelta(0)


def test_timestamps_come_back_in_utc(repo: SqlDeadLetterRepository) -> None:
    paris = timezone(timedelta(hours=1))
    letter = make_letter(failed_at=datetime(2025, 3, 1, 13, 0, tzinfo=paris))

    repo.write(letter)
    stored = repo.get(letter.id)

    assert stored.failed_at == BASE
    assert stored.failed_at.tzinfo is not None and stored.failed_at.utcoffset() == timedelta(0)


def test_a_redelivered_job_writes_one_row(repo: SqlDeadLetterRepository) -> None:
    first = make_letter()
    again = make_letter(job_id=first.job_id, error_message="second attempt")

    assert repo.write(first) is True
    assert repo.write(again) is False

    letters, total = repo.read(DLQFilter())
    assert total == 1
    assert [x.id for x in letters] == [first.id]
    assert letters[0].error_message == "HTTP 503 from target"
    with pytest.raises(NotFoundError):
        repo.get(again.id)


def _population(repo: SqlDeadLetterRepository) -> None:
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
    repo.claim_for_replay(d.id, str(uuid.uuid4()), NOW)


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
        (DLQFilter(target="slack", error_type=ErrorType.TRANSIENT, replayed=False), "c"),
        (DLQFilter(target="nobody"), ""),
    ],
)
def test_read_filters_newest_first(repo: SqlDeadLetterRepository, query: DLQFilter, expected: str) -> None:
    _population(repo)

    letters, total = repo.read(query)

    assert "".join(x.fingerprint for x in letters) == expected
    assert total == len(expected)


def test_read_pages_newest_first_with_the_total(repo: SqlDeadLetterRepository) -> None:
    _population(repo)

    pages = [repo.read(DLQFilter(), limit=2, offset=offset) for offset in (0, 2, 4, 6)]

    assert ["".join(x.fingerprint for x in page) for page, _ in pages] == ["ed", "cb", "a", ""]
    assert {total for _, total in pages} == {5}


def test_read_clamps_limit_and_offset(repo: SqlDeadLetterRepository) -> None:
    _population(repo)

    assert len(repo.read(DLQFilter(), limit=0)[0]) == 1
    assert len(repo.read(DLQFilter(), limit=10_000, offset=-3)[0]) == 5


def test_rows_failing_at_the_same_instant_have_a_stable_order(repo: SqlDeadLetterRepository) -> None:
    letters = [make_letter() for _ in range(4)]
    for letter in letters:
        repo.write(letter)

    page, _ = repo.read(DLQFilter())

    assert [x.id for x in page] == sorted(x.id for x in letters)


@pytest.mark.parametrize("letter_id", [str(uuid.uuid4()), "not-a-uuid", ""])
def test_get_of_an_unknown_id_is_not_found(repo: SqlDeadLetterRepository, letter_id: str) -> None:
    with pytest.raises(NotFoundError):
        repo.get(letter_id)


def test_a_row_is_claimed_for_replay_once(repo: SqlDeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    first_job, second_job = str(uuid.uuid4()), str(uuid.uuid4())

    claimed = repo.claim_for_replay(letter.id, first_job, NOW)

    assert (claimed.replayed, claimed.replayed_at, claimed.replay_job_id) == (True, NOW, first_job)
    assert claimed.updated_at == NOW
    with pytest.raises(AlreadyReplayedError) as raised:
        repo.claim_for_replay(letter.id, second_job, NOW + timedelta(minutes=1))
    assert raised.value.dead_letter_id == letter.id
    assert raised.value.details["replay_job_id"] == first_job
    assert repo.get(letter.id).replay_job_id == first_job


def test_a_released_claim_makes_the_row_replayable_again(repo: SqlDeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    lost_job, other_job, next_job = (str(uuid.uuid4()) for _ in range(3))
    repo.claim_for_replay(letter.id, lost_job, NOW)

    repo.release_claim(letter.id, other_job, NOW)  # someone else's claim: left alone
    assert repo.get(letter.id).replay_job_id == lost_job
    repo.release_claim(letter.id, lost_job, NOW)

    released = repo.get(letter.id)
    assert (released.replayed, released.replay_job_id, released.replayed_at) == (False, None, None)
    assert released.replay_result is ReplayResult.SKIPPED
    assert repo.claim_for_replay(letter.id, next_job, NOW).replay_job_id == next_job


@pytest.mark.parametrize("letter_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_claiming_an_unknown_row_is_not_found(repo: SqlDeadLetterRepository, letter_id: str) -> None:
    with pytest.raises(NotFoundError):
        repo.claim_for_replay(letter_id, str(uuid.uuid4()), NOW)


def test_concurrent_claims_have_exactly_one_winner(repo: SqlDeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    start = threading.Barrier(8)
    winners: list[str] = []
    losers: list[str] = []
    unexpected: list[BaseException] = []

    def claim() -> None:
        job_id = str(uuid.uuid4())
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
    assert len(winners) == 1
    assert len(losers) == 7
    assert repo.get(letter.id).replay_job_id == winners[0]


def test_replay_results_are_recorded(repo: SqlDeadLetterRepository) -> None:
    by_id, by_job, untouched = make_letter(), make_letter(), make_letter()
    for letter in (by_id, by_job, untouched):
        repo.write(letter)
    replay_job = str(uuid.uuid4())
    repo.claim_for_replay(by_job.id, replay_job, NOW)

    repo.set_replay_result(by_id.id, ReplayResult.SKIPPED, NOW)
    repo.set_replay_result_by_job(replay_job, ReplayResult.SUCCESS, NOW + timedelta(seconds=5))
    repo.set_replay_result_by_job(str(uuid.uuid4()), ReplayResult.FAILED, NOW)
    repo.set_replay_result_by_job("not-a-uuid", ReplayResult.FAILED, NOW)

    assert repo.get(by_id.id).replay_result is ReplayResult.SKIPPED
    assert repo.get(by_job.id).replay_result is ReplayResult.SUCCESS
    assert repo.get(by_job.id).updated_at == NOW + timedelta(seconds=5)
    assert repo.get(untouched.id).replay_result is None
    with pytest.raises(NotFoundError):
        repo.set_replay_result(str(uuid.uuid4()), ReplayResult.FAILED, NOW)


def test_purge_by_age_and_replayed_only(repo: SqlDeadLetterRepository) -> None:
    old_replayed = make_letter(failed_at=BASE - timedelta(days=10))
    old = make_letter(failed_at=BASE - timedelta(days=9))
    recent_replayed = make_letter(failed_at=BASE)
    for letter in (old_replayed, old, recent_replayed):
        repo.write(letter)
    for letter in (old_replayed, recent_replayed):
        repo.claim_for_replay(letter.id, str(uuid.uuid4()), NOW)
    cutoff = BASE - timedelta(days=7)

    assert repo.purge(cutoff, replayed_only=True) == 1
    assert repo.purge(cutoff) == 1
    assert repo.purge(cutoff) == 0

    remaining, total = repo.read(DLQFilter())
    assert (total, remaining[0].id) == (1, recent_replayed.id)


def test_stats_and_count_by_target(repo: SqlDeadLetterRepository) -> None:
    _population(repo)

    stats = repo.stats()

    assert stats.total == 5
    assert stats.by_error_type == {"permanent": 1, "transient": 3, "unknown": 1}
    assert stats.by_target == {"pd": 2, "slack": 2, "hook": 1}
    assert stats.by_priority == {"high": 2, "medium": 2, "low": 1}
    assert (stats.oldest, stats.newest) == (BASE, BASE + timedelta(hours=4))
    assert stats.replayed == 1
    assert repo.count_by_target() == {"pd": 2, "slack": 2, "hook": 1}


def test_stats_of_an_empty_queue(repo: SqlDeadLetterRepository) -> None:
    stats = repo.stats()

    assert (stats.total, stats.oldest, stats.newest, stats.replayed) == (0, None, None, 0)
    assert stats.by_target == {} and repo.count_by_target() == {}


_RAW_INSERT = sa.text(
    "INSERT INTO publishing_dlq (id, job_id, fingerprint, target_name, target_type, enriched_alert,"
    " target_config, error_message, error_type, retry_count, priority, failed_at, replayed,"
    " replayed_at, replay_job_id, replay_result)"
    " VALUES (:id, :job_id, 'fp', 'pd', 'pagerduty', '{}', '{}', 'boom', :error_type, :retry_count,"
    " :priority, '2025-03-01 12:00:00.000000', :replayed, :replayed_at, :replay_job_id, :replay_result)"
)


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({}, None),
        ({"error_type": "fatal"}, "ck_publishing_dlq_error_type"),
        ({"priority": "urgent"}, "ck_publishing_dlq_priority"),
        ({"replay_result": "maybe"}, "ck_publishing_dlq_replay_result"),
        ({"retry_count": -1}, "ck_publishing_dlq_retry_count"),
        ({"replayed": True}, "ck_publishing_dlq_replayed"),
        ({"replay_job_id": uuid.uuid4().hex}, "ck_publishing_dlq_replayed"),
    ],
)
def test_check_constraints_reject_bad_values(
    engine: Engine, overrides: dict[str, Any], constraint: str | None
) -> None:
    row: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "job_id": uuid.uuid4().hex,
        "error_type": "transient",
        "retry_count": 0,
        "priority": "low",
        "replayed": False,
        "replayed_at": None,
        "replay_job_id": None,
        "replay_result": None,
    } | overrides

    if constraint is None:
        with engine.begin() as conn:
            conn.execute(_RAW_INSERT, row)
        return
    with pytest.raises(sa.exc.IntegrityError, match=constraint), engine.begin() as conn:
        conn.execute(_RAW_INSERT, row)


def test_an_unreachable_database_is_reported_as_unavailable() -> None:
    # Port 1 refuses connections, so this needs no server and answers at once.
    engine = create_engine_for("postgresql://postgres@127.0.0.1:1/publishing")
    repo = SqlDeadLetterRepository(engine)
    letter = make_letter()
    calls = [
        lambda: repo.write(letter),
        lambda: repo.read(DLQFilter()),
        lambda: repo.get(letter.id),
        lambda: repo.claim_for_replay(letter.id, str(uuid.uuid4()), NOW),
        lambda: repo.set_replay_result(letter.id, ReplayResult.FAILED, NOW),
        lambda: repo.set_replay_result_by_job(str(uuid.uuid4()), ReplayResult.FAILED, NOW),
        lambda: repo.purge(NOW),
        lambda: repo.stats(),
        lambda: repo.count_by_target(),
    ]
    started = time.monotonic()
    try:
        for call in calls:
            with pytest.raises(DatabaseUnavailableError) as raised:
                call()
            assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
    finally:
        engine.dispose()
    assert time.monotonic() - started < 10


def test_a_plain_postgresql_url_gets_psycopg2() -> None:
    engine = create_engine_for("postgresql://postgres@127.0.0.1:1/publishing")
    try:
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()
