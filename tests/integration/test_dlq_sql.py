"""What only the SQL dead-letter repository does, on a real PostgreSQL database and a SQLite
file each created by the project's Alembic migration: the table's check constraints, text a
database would refuse, and how fast an unreachable database is reported. The behaviour it
shares with the in-memory fake is held in ``tests/contract/test_dead_letters_contract.py``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publishing.adapters.sql import SqlDeadLetterRepository, create_engine_for, publishing_dlq
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter, ReplayResult
from publishing.errors import DatabaseUnavailableError
from publishing.priority import Priority
from tests.contract.sql_fixtures import UNREACHABLE_POSTGRES_URL, sqlite_engine

NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)


def make_letter(**overrides: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_id": str(uuid.uuid4()),
        "fingerprint": "fp-1",
        "target_name": "ops-webhook",
        "target_type": "webhook",
        "enriched_alert": {"alert": {"fingerprint": "fp-1", "alert_name": "HighCPU"}},
        "target_config": {"name": "ops-webhook", "bearer_token": "***"},
        "error_message": "HTTP 503 from target",
        "error_type": ErrorType.TRANSIENT,
        "retry_count": 5,
        "priority": Priority.HIGH,
        "failed_at": NOW,
    }
    values.update(overrides)
    return DeadLetter(**values)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        with sqlite_engine(tmp_path) as engine:
            yield engine
        return
    engine = create_engine_for(request.getfixturevalue("migrated_postgres_url"))
    with engine.begin() as conn:
        conn.execute(sa.delete(publishing_dlq))
    yield engine
    engine.dispose()


def test_text_a_database_would_refuse_is_stored_with_replacements(engine: Engine) -> None:
    # PostgreSQL refuses NUL in text and jsonb, and no driver encodes a lone surrogate: the
    # row must be written all the same, or its job could never leave the broker.
    repo = SqlDeadLetterRepository(engine)
    letter = make_letter(
        error_message="bad\x00byte \ud800",
        enriched_alert={"alert": {"summary": "nul\x00", "when": NOW}, "k\x00": ["\ud800"]},
    )

    assert repo.write(letter) is True
    stored = repo.get(letter.id)

    assert stored.error_message == "bad\ufffdbyte ?"
    assert stored.enriched_alert == {
        "alert": {"summary": "nul\ufffd", "when": NOW.isoformat()},
        "k\ufffd": ["?"],
    }


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


def test_an_unreachable_database_is_reported_fast_with_the_drivers_error() -> None:
    engine = create_engine_for(UNREACHABLE_POSTGRES_URL)
    repo = SqlDeadLetterRepository(engine)
    letter = make_letter()
    calls = [
        lambda: repo.write(letter),
        lambda: repo.read(DLQFilter()),
        lambda: repo.get(letter.id),
        lambda: repo.claim_for_replay(letter.id, str(uuid.uuid4()), NOW),
        lambda: repo.release_claim(letter.id, str(uuid.uuid4()), NOW),
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
    engine = create_engine_for(UNREACHABLE_POSTGRES_URL)
    try:
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()


def _nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["k"] = {}
        node = node["k"]
    return root


def _incompressible(chars: int) -> str:
    # A btree entry is compressed before its size is checked: text that does not compress.
    return "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(chars))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"enriched_alert": {"alert": _nested(5_000)}}, "nested more than", id="too-deep"),
        pytest.param(
            {"enriched_alert": {"v": float("nan"), "w": [float("inf")]}}, "JSON cannot hold", id="nan"
        ),
        pytest.param({"fingerprint": _incompressible(5_000)}, "", id="index-row-too-big"),
        pytest.param({"retry_count": 10**12}, "", id="integer-out-of-range"),
        pytest.param({"retry_count": -1}, "", id="check-constraint"),
        pytest.param({"target_type": "t" * 100}, "", id="text-longer-than-its-column"),
        pytest.param({"job_id": "not-a-uuid"}, "not a UUID", id="id-not-a-uuid"),
    ],
)
def test_a_row_the_database_refuses_is_stored_reduced(
    engine: Engine, overrides: dict[str, Any], reason: str
) -> None:
    """Each refusal (of ours or the database's) ends as one row holding the alert as escaped
    text and the reason: never lost, never an endless retry, never 'database unreachable'."""
    repo = SqlDeadLetterRepository(engine)
    letter = make_letter(**overrides)

    assert repo.write(letter) is True
    assert repo.write(letter) is False  # idempotent on the job, reduced or not

    stored = repo.get(letter.id) if overrides.get("job_id") is None else repo.read(DLQFilter())[0][0]
    alert = stored.enriched_alert
    if "text" in alert:  # the reduced form (SQLite takes some of these as they are)
        assert "stored as text" in stored.error_message and reason in alert["stored_as_text"]
        assert alert["text"].isascii() and alert["text"].startswith("{")
        assert len(stored.fingerprint) <= 255
        assert 0 <= stored.retry_count < 2**31
    else:
        assert engine.dialect.name == "sqlite"


def test_a_deep_alert_is_kept_whole_as_text(engine: Engine) -> None:
    repo = SqlDeadLetterRepository(engine)
    deep = {"alert": {"enrichment_metadata": _nested(800)}, "nul": "a\x00b\ud800"}
    letter = make_letter(enriched_alert=deep)

    repo.write(letter)

    text = repo.get(letter.id).enriched_alert["text"]
    assert text.count('{"k":') == 800
    assert '"nul":"a\\u0000b\\ud800"' in text


def test_an_unreachable_database_is_not_taken_for_a_refusal() -> None:
    engine = create_engine_for(UNREACHABLE_POSTGRES_URL)
    try:
        with pytest.raises(DatabaseUnavailableError):
            SqlDeadLetterRepository(engine).write(make_letter(enriched_alert={"alert": _nested(5_000)}))
    finally:
        engine.dispose()


def test_the_storable_forms_recurse_at_no_depth() -> None:
    from publishing.adapters import sql

    shallow = _nested(sql.MAX_STORED_DEPTH - 1)
    assert sql._jsonable(shallow) == shallow
    with pytest.raises(sql._Refused):
        sql._jsonable(_nested(100_000))
    text = sql._json_text([_nested(100_000), ("\ud800", NOW, None, 1.5, True)])
    assert text.startswith('[{"k":{"k":')
    assert text.endswith('}},["\\ud800","' + NOW.isoformat() + '",null,1.5,true]]')
