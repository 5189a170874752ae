"""The ``HistoryRepository`` contract, held by the in-memory fake and by the SQL repository on
SQLite and PostgreSQL alike: filters, order, paging, idempotent batches, each job's alert kept
once, bounded pruning and an unreachable database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publishing.adapters.history_sql import SqlHistoryRepository, publishing_history, publishing_history_jobs
from publishing.adapters.sql import create_engine_for
from publishing.classification import ErrorType
from publishing.errors import DatabaseUnavailableError, NotFoundError
from publishing.history import MAX_BATCH, AttemptRecord, AttemptResult, HistoryQuery, HistoryRepository
from publishing.priority import Priority
from publishing.testing import InMemoryHistoryRepository
from tests.contract.sql_fixtures import (
    UNREACHABLE_POSTGRES_URL,
    postgres_engine,
    sqlite_engine,
    unreachable_sqlite_url,
)

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALERT = {"alert": {"fingerprint": "fp-1", "alert_name": "HighCPU", "labels": {"severity": "critical"}}}


def make_record(**overrides: Any) -> AttemptRecord:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_id": "job-1",
        "target": "ops-webhook",
        "via": None,
        "attempt": 1,
        "attempted_at": BASE,
        "result": AttemptResult.RETRY,
        "status_code": 503,
        "duration_s": 0.25,
        "error_type": ErrorType.TRANSIENT,
        "excerpt": "TransientPublishError: HTTP 503 from target 'ops-webhook'",
        "fingerprint": "fp-1",
        "alert_name": "HighCPU",
        "priority": Priority.HIGH,
        "alert": ALERT,
    }
    values.update(overrides)
    return AttemptRecord(**values)


@pytest.fixture(scope="module")
def sqlite_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with sqlite_engine(tmp_path_factory.mktemp("history")) as engine:
        yield engine


@pytest.fixture(scope="module")
def postgresql_history() -> Iterator[Engine]:
    with postgres_engine() as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def repo(request: pytest.FixtureRequest) -> HistoryRepository:
    if request.param == "memory":
        return InMemoryHistoryRepository()
    engine: Engine = request.getfixturevalue(f"{request.param}_history")
    with engine.begin() as conn:
        conn.execute(sa.delete(publishing_history))
        conn.execute(sa.delete(publishing_history_jobs))
    return SqlHistoryRepository(engine)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def unavailable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryRepository]:
    if request.param == "memory":
        fake = InMemoryHistoryRepository()
        fake.unavailable = True
        yield fake
        return
    url = UNREACHABLE_POSTGRES_URL if request.param == "postgresql" else unreachable_sqlite_url(tmp_path)
    engine = create_engine_for(url)
    try:
        yield SqlHistoryRepository(engine)
    finally:
        engine.dispose()


def test_a_job_s_attempts_come_back_oldest_first_as_stored(repo: HistoryRepository) -> None:
    first = make_record(attempt=1, attempted_at=BASE)
    second = make_record(attempt=2, attempted_at=BASE + timedelta(seconds=1))
    third = make_record(
        attempt=3,
        attempted_at=BASE + timedelta(seconds=3),
        result=AttemptResult.DELIVERED,
        status_code=200,
        error_type=None,
        excerpt=None,
    )
    assert repo.append([third, first, second]) == 3

    attempts = repo.attempts_of("job-1")
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert attempts[2] == third
    assert attempts[0].attempted_at == BASE and attempts[0].attempted_at.tzinfo is not None
    assert all(a.alert is None for a in attempts)  # the alert is the job's, read with get()
    assert repo.attempts_of("no-such-job") == []


def test_appending_the_same_record_twice_stores_it_once(repo: HistoryRepository) -> None:
    record = make_record()
    assert repo.append([record]) == 1
    assert repo.append([record, make_record(attempt=2)]) == 1
    assert repo.query(HistoryQuery())[1] == 2


def test_each_job_s_alert_is_kept_once_and_read_with_an_attempt(repo: HistoryRepository) -> None:
    first, second = make_record(), make_record(attempt=2, alert={"alert": {"other": True}})
    repo.append([first])
    repo.append([second])
    assert repo.get(second.id).alert == ALERT  # the first one written stays the job's
    got = repo.get(first.id)
    assert got == first and got.alert == ALERT
    with pytest.raises(NotFoundError):
        repo.get(str(uuid.uuid4()))


def test_a_malformed_attempt_id_names_no_attempt(repo: HistoryRepository) -> None:
    with pytest.raises(NotFoundError):
        repo.get("not-a-uuid")


def test_filters_and_newest_first_paging(repo: HistoryRepository) -> None:
    records = [
        make_record(job_id="a", fingerprint="fp-a", alert_name="DiskFull", target="pd", attempted_at=BASE),
        make_record(job_id="b", fingerprint="fp-b", alert_name="DiskFull", target="slack",
                    attempted_at=BASE + timedelta(minutes=1)),
        make_record(job_id="c", fingerprint="fp-a", alert_name="HighCPU", target="pd",
                    attempted_at=BASE + timedelta(minutes=2)),
    ]  # fmt: skip
    repo.append(records)

    page, total = repo.query(HistoryQuery())
    assert total == 3 and [r.job_id for r in page] == ["c", "b", "a"]
    assert [r.job_id for r in repo.query(HistoryQuery(fingerprint="fp-a"))[0]] == ["c", "a"]
    assert [r.job_id for r in repo.query(HistoryQuery(alert_name="DiskFull"))[0]] == ["b", "a"]
    assert [r.job_id for r in repo.query(HistoryQuery(target="pd"))[0]] == ["c", "a"]
    window = HistoryQuery(since=BASE + timedelta(minutes=1), until=BASE + timedelta(minutes=2))
    assert [r.job_id for r in repo.query(window)[0]] == ["b"]
    page, total = repo.query(HistoryQuery(), limit=1, offset=1)
    assert total == 3 and [r.job_id for r in page] == ["b"]
    assert repo.query(HistoryQuery(target="nowhere")) == ([], 0)


def test_a_full_batch_is_one_append(repo: HistoryRepository) -> None:
    batch = [
        make_record(job_id=f"job-{i}", attempted_at=BASE + timedelta(seconds=i)) for i in range(MAX_BATCH)
    ]
    assert repo.append(batch) == MAX_BATCH
    assert repo.query(HistoryQuery(), limit=1)[1] == MAX_BATCH


def test_pruning_deletes_old_attempts_in_bounded_batches(repo: HistoryRepository) -> None:
    old = [
        make_record(job_id=f"old-{i}", attempted_at=BASE - timedelta(days=20, seconds=i)) for i in range(5)
    ]
    kept = make_record(job_id="new", attempted_at=BASE)
    repo.append([*old, kept])
    cutoff = BASE - timedelta(days=14)

    assert repo.prune(cutoff, batch=3) == 3
    assert repo.prune(cutoff, batch=3) == 2
    assert repo.prune(cutoff, batch=3) == 0
    assert [r.job_id for r in repo.query(HistoryQuery())[0]] == ["new"]
    assert repo.get(kept.id).alert == ALERT


def test_an_unreachable_database_is_reported_as_unavailable(unavailable: HistoryRepository) -> None:
    with pytest.raises(DatabaseUnavailableError):
        unavailable.append([make_record()])
    with pytest.raises(DatabaseUnavailableError):
        unavailable.query(HistoryQuery())
    with pytest.raises(DatabaseUnavailableError):
        unavailable.prune(BASE)
