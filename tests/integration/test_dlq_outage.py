"""A job that fails for good while the DLQ database is down is not lost: it waits, and the
row appears once the database is back (docs/design.md (Dead-letter queue), "Retries")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from publishing.classification import ErrorType
from publishing.tracking import JobState
from tests.integration.conftest import migrate
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert
from tests.support.private_services import PrivatePostgres

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.start()
    yield server
    server.destroy()


def test_a_dead_letter_waits_for_the_database_and_is_written_when_it_returns(
    private_postgres: PrivatePostgres, fresh_redis: str, tmp_path: Path
) -> None:
    migrate(private_postgres.url)
    with HttpTarget([Reply(400)]) as hook:
        pipeline = Pipeline(
            tmp_path,
            fresh_redis,
            private_postgres.url,
            [{"name": "ops-webhook", "type": "webhook", "url": hook.url}],
        )
        try:
            pipeline.worker()
            private_postgres.stop()
            (job,) = pipeline.submit(alerts(am_alert("NoDb")), ["ops-webhook"]).jobs

            # Failed for good, the row not yet written: the job stays alive in the broker.
            pipeline.wait_state(job.id, JobState.FAILED, timeout_s=20)
            wait_until(lambda: len(hook.received) >= 1, 10)
            wait_until(lambda: b"DLQ is unreachable" in _logs(tmp_path), 15)

            private_postgres.start()
            pipeline.wait_state(job.id, JobState.DLQ, timeout_s=60)
            (row,) = pipeline.dlq_rows()
            assert row.job_id == job.id
            assert row.error_type is ErrorType.PERMANENT
            assert len(hook.received) == 1  # the write was retried, not the delivery
        finally:
            pipeline.close()


def _logs(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("worker-*.log"))
