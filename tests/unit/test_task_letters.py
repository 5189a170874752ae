"""A dead letter that cannot be written is never a reason to drop the job: whatever the write
raises, the task sees ``LetterUnwritable`` and the plan keeps the job waiting for its row."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from publishing.alert import parse_alertmanager
from publishing.errors import DatabaseUnavailableError
from publishing.job import Job
from publishing.plan import LetterUnwritable, LetterWritten, Timings, plan
from publishing.priority import Priority
from workers.tasks import _write_letter

FAILURE = {"error_type": "permanent", "error": "HTTP 400", "failed_at": 1_700_000_000.0, "writes": 0}


def failed_job() -> Job:
    [alert] = parse_alertmanager(
        {"alerts": [{"status": "firing", "labels": {"alertname": "X"}, "startsAt": "2024-05-01T10:00:00Z"}]}
    )
    return Job("job-1", "pd", Priority.HIGH, alert, submitted_at=1_700_000_000.0, failure=FAILURE)


def services(write: Any) -> Any:
    return SimpleNamespace(
        dead_letters=SimpleNamespace(write=write),
        delivery=SimpleNamespace(letter_for=lambda job: object()),
    )


def raising(exc: Exception) -> Any:
    def write(letter: object) -> bool:
        raise exc

    return write


@pytest.mark.parametrize(
    "exc", [DatabaseUnavailableError("down"), ValueError("a bug"), RecursionError("too deep")]
)
def test_a_letter_write_that_raises_keeps_the_job(exc: Exception) -> None:
    event = _write_letter(services(raising(exc)), failed_job())
    assert isinstance(event, LetterUnwritable)
    kept = plan(failed_job(), event, 1_700_000_100.0, Timings())
    assert kept.retry is not None and kept.retry.failure is not None and kept.countdown_s > 0


def test_a_written_letter_is_written() -> None:
    assert isinstance(_write_letter(services(lambda letter: True), failed_job()), LetterWritten)
