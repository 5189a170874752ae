"""The DLQ database down for 30 s while jobs fail for good (docs/design.md (Dead-letter queue), "Retries"): a private
PostgreSQL is stopped in the middle of a load to a target that answers 400; the jobs keep
retrying their DLQ write, unacknowledged, and afterwards every job has exactly one row, which
says when the job failed (not when the database came back)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.rig import Rig, payloads
from tests.integration.conftest import migrate
from tests.support.alert_api import Background
from tests.support.books import dlq_job_ids
from tests.support.fault_target import FaultTarget
from tests.support.fleet import wait_until
from tests.support.http_target import Reply
from tests.support.private_services import PrivatePostgres

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

OUTAGE_S = 30.0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.start()
    migrate(server.url)
    yield server
    server.destroy()


def test_the_dlq_database_down_for_30_s_loses_no_dead_letter(
    private_postgres: PrivatePostgres, fresh_redis: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("rejecting", Reply(400, body='{"error":"bad request"}', delay_s=0.02))
    rig = Rig(tmp_path, fresh_redis, private_postgres.url, [target])
    try:
        rig.fleet.start("w1", concurrency=4)
        sender = rig.start_api()
        load = Background(
            sender, payloads("NoDb", 120, severities=("critical", "warning", "info")), threads=2, pace_s=0.4
        )
        wait_until(lambda: len(dlq_job_ids(private_postgres.url)) >= 20, 60)
        private_postgres.stop()
        down_at = datetime.now(UTC)
        stopped = time.monotonic()
        load.join(OUTAGE_S)
        # Everything submitted has failed at the target and waits for the database.
        wait_until(lambda: len(target.snapshot()) >= len(rig.jobs), 20)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        waiting_in_broker = rig.redis.hlen("unacked")
        private_postgres.start()
        up_at = datetime.now(UTC)

        books = rig.books(timeout_s=60)
        record_books("3 DLQ database down 30 s", books)
        print(
            f"database down {(up_at - down_at).total_seconds():.0f} s; jobs held meanwhile: {waiting_in_broker}"
        )
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.submitted == 120
        assert books.in_dlq == 120
        assert books.dlq_rows_extra == 0, "a job has more than one DLQ row"
        assert waiting_in_broker > 0
        assert len(target.snapshot()) == 120, "a failed job was delivered again instead of its row written"
        rows = rig.dlq_rows()
        written_late = [r for r in rows if r["created_at"] >= up_at]
        assert written_late, "no row waited for the database: the outage proved nothing"
        assert all(r["failed_at"] < up_at for r in written_late)
        assert {r["error_type"] for r in rows} == {"permanent"}
        assert "DLQ is unreachable" in rig.fleet.logs()
    finally:
        rig.close()
        target.stop()
