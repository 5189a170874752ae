"""What only the in-memory dead-letter repository does. The contract it shares with the SQL one
is held in ``tests/contract/test_dead_letters_contract.py``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter
from publishing.errors import DatabaseUnavailableError
from publishing.priority import Priority
from publishing.testing import InMemoryDeadLetterRepository

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


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


def test_without_a_database_clock_rows_are_created_when_they_failed() -> None:
    repo = InMemoryDeadLetterRepository()
    letter = make_letter()
    repo.write(letter)

    stored = repo.get(letter.id)

    assert (stored.created_at, stored.updated_at) == (BASE, BASE)


def test_an_outage_ends_when_unavailable_is_cleared() -> None:
    repo = InMemoryDeadLetterRepository()
    letter = make_letter()
    repo.write(letter)

    repo.unavailable = True
    with pytest.raises(DatabaseUnavailableError):
        repo.get(letter.id)
    repo.unavailable = False

    assert repo.read(DLQFilter()) == ([repo.get(letter.id)], 1)
