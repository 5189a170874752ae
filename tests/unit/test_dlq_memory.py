"""The in-memory dead-letter repository keeps the contract the SQL one keeps, so that unit tests
of the workers and the API can stand on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DeadLetterRepository, DLQFilter, ReplayResult
from publishing.errors import AlreadyReplayedError, DatabaseUnavailableError, NotFoundError
from publishing.priority import Priority
from publishing.testing import InMemoryDeadLetterRepository

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
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
        "failed_at": BASE,
    }
    values.update(overrides)
    return DeadLetter(**values)


@pytest.fixture
def repo() -> InMemoryDeadLetterRepository:
    return InMemoryDeadLetterRepository()


def test_it_is_a_dead_letter_repository(repo: InMemoryDeadLetterRepository) -> None:
    port: DeadLetterRepository = repo
    assert port is repo


def test_a_redelivered_job_writes_one_row(repo: InMemoryDeadLetterRepository) -> None:
    first = make_letter()

    assert repo.write(first) is True
    assert repo.write(make_letter(job_id=first.job_id.upper(), error_message="again")) is False

    letters, total = repo.read(DLQFilter())
    assert total == 1
    assert letters[0].error_message == first.error_message


def test_get_and_not_found(repo: InMemoryDeadLetterRepository) -> None:
    letter = make_letter(failed_at=datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    repo.write(letter)

    stored = repo.get(letter.id)

    assert stored.failed_at == BASE and stored.failed_at.utcoffset() == timedelta(0)
    assert stored.created_at is not None
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFoundError):
            repo.get(unknown)


def test_a_row_is_claimed_for_replay_once(repo: InMemoryDeadLetterRepository) -> None:
    letter = make_letter()
    repo.write(letter)
    replay_job = str(uuid.uuid4())

    claimed = repo.claim_for_replay(letter.id, replay_job, NOW)

    assert (claimed.replayed, claimed.replayed_at, claimed.replay_job_id) == (True, NOW, replay_job)
    with pytest.raises(AlreadyReplayedError) as raised:
        repo.claim_for_replay(letter.id, str(uuid.uuid4()), NOW)
    assert raised.value.details["replay_job_id"] == replay_job
    with pytest.raises(NotFoundError):
        repo.claim_for_replay(str(uuid.uuid4()), str(uuid.uuid4()), NOW)


def test_read_filters_pages_and_orders_newest_first(repo: InMemoryDeadLetterRepository) -> None:
    for hours, target in enumerate(["pd", "slack", "pd", "hook"]):
        repo.write(
            make_letter(fingerprint=str(hours), target_name=target, failed_at=BASE + timedelta(hours=hours))
        )

    page, total = repo.read(DLQFilter(), limit=2, offset=1)
    pd, pd_total = repo.read(DLQFilter(target="pd", failed_before=BASE + timedelta(hours=2)))

    assert ([x.fingerprint for x in page], total) == (["2", "1"], 4)
    assert ([x.fingerprint for x in pd], pd_total) == (["0"], 1)
    assert len(repo.read(DLQFilter(), limit=0)[0]) == 1


def test_replay_results_purge_and_stats(repo: InMemoryDeadLetterRepository) -> None:
    old, recent = make_letter(failed_at=BASE - timedelta(days=10)), make_letter(target_name="pd")
    repo.write(old)
    repo.write(recent)
    replay_job = str(uuid.uuid4())
    repo.claim_for_replay(old.id, replay_job, NOW)

    repo.set_replay_result_by_job(replay_job, ReplayResult.SUCCESS, NOW)
    repo.set_replay_result(recent.id, ReplayResult.SKIPPED, NOW)
    stats = repo.stats()

    assert repo.get(old.id).replay_result is ReplayResult.SUCCESS
    assert repo.get(recent.id).replay_result is ReplayResult.SKIPPED
    assert (stats.total, stats.replayed, stats.oldest, stats.newest) == (2, 1, old.failed_at, BASE)
    assert repo.count_by_target() == {"ops-webhook": 1, "pd": 1}
    assert repo.purge(BASE - timedelta(days=7), replayed_only=True) == 1
    assert repo.purge(BASE + timedelta(days=1), replayed_only=True) == 0
    assert repo.purge(BASE + timedelta(days=1)) == 1


def test_an_unavailable_repository_raises(repo: InMemoryDeadLetterRepository) -> None:
    repo.unavailable = True

    with pytest.raises(DatabaseUnavailableError):
        repo.write(make_letter())
    with pytest.raises(DatabaseUnavailableError):
        repo.stats()
