"""Storm grouping with real workers, Redis and PostgreSQL: a storm to a target limited to one
message a second arrives as a few messages carrying every alert, each job's tracking and
history name the message that carried it, and an alert's firing and resolve keep their order
(docs/design.md (Storm grouping))."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from publishing.adapters.history_sql import SqlHistoryRepository, publishing_history, publishing_history_jobs
from publishing.adapters.sql import create_engine_for
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert
from tests.support.procs import children

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

GROUPED = {"type": "slack", "rate_limit": {"per_s": 1}, "group_by": ["cluster"], "group_wait_s": 1}


@pytest.fixture
def chat() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


@pytest.fixture
def history_db(dlq_database_url: str) -> Iterator[SqlHistoryRepository]:
    engine = create_engine_for(dlq_database_url)
    with engine.begin() as conn:
        conn.execute(sa.delete(publishing_history))
        conn.execute(sa.delete(publishing_history_jobs))
    yield SqlHistoryRepository(engine)
    engine.dispose()


def bodies(server: HttpTarget) -> list[str]:
    return [json.dumps(r.json()) for r in server.received]


def storm(count: int, **labels: str) -> list[dict[str, Any]]:
    return [
        am_alert(f"Disk{i}", severity="warning", cluster="eu-1", instance=f"h{i}", **labels)
        for i in range(count)
    ]


def test_a_storm_to_a_limited_target_arrives_as_a_few_messages_carrying_every_alert(
    chat: HttpTarget,
    fresh_redis: str,
    dlq_database_url: str,
    history_db: SqlHistoryRepository,
    tmp_path: Path,
) -> None:
    targets = [{"name": "chat", "url": chat.url, **GROUPED}]
    pipeline = Pipeline(
        tmp_path, fresh_redis, dlq_database_url, targets, PUBLISHING_HISTORY_FLUSH_INTERVAL_S="0.2"
    )
    try:
        pipeline.worker("w1", concurrency=4)
        enriched = alerts(*storm(50))
        jobs = pipeline.submit(enriched, ["chat"]).jobs
        for job in jobs:
            pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=60)

        # One message a second at most, so 50 alerts one by one would take 50 s: a few carry all.
        assert 1 <= len(chat.received) <= 5
        sent = "\n".join(bodies(chat))
        assert all(e.alert.fingerprint in sent for e in enriched)
        carriers = {pipeline.job(j.id).carried_by for j in jobs}
        assert len(carriers) == len(chat.received) and None not in carriers
        assert {r.headers["Idempotency-Key"] for r in chat.received} == carriers
        # Every alert's own job has its own history record, naming the message that carried it.
        for job in jobs:
            carrier = pipeline.job(job.id).carried_by
            records = wait_until(lambda job=job: history_db.attempts_of(job.id), timeout_s=20)
            assert [r.result.value for r in records] == ["delivered"]
            if job.id != carrier:
                assert records[0].excerpt is not None and f"carried by job {carrier}" in records[0].excerpt
        assert pipeline.dlq_rows() == []
    finally:
        pipeline.close()


def test_a_firing_and_its_resolve_in_a_storm_keep_their_order(
    chat: HttpTarget, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    # The first message is slow and fails: the group carrying the firing is on the wire when
    # the resolve comes, and is sent again after it; the resolve must not overtake it.
    chat.script([Reply(503, delay_s=1.5), Reply(200)])
    targets = [{"name": "chat", "url": chat.url, **GROUPED, "type": "webhook"}]
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
    try:
        pipeline.worker("w1", concurrency=4)
        firing = alerts(*storm(10), am_alert("Watched", cluster="eu-1", instance="w"))
        fingerprint = firing[-1].alert.fingerprint
        jobs = pipeline.submit(firing, ["chat"]).jobs
        wait_until(lambda: chat.received or None, timeout_s=20)  # the group is being sent
        resolved = alerts(am_alert("Watched", status="resolved", cluster="eu-1", instance="w"))
        (resolve,) = pipeline.submit(resolved, ["chat"]).jobs
        for job in [*jobs, resolve]:
            pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=30)

        seen = [
            (r.at, alert["status"])
            for r in chat.received
            for alert in r.json().get("alerts", [r.json()])
            if alert["fingerprint"] == fingerprint
        ]
        statuses = [status for _, status in sorted(seen)]
        assert statuses == ["firing", "firing", "resolved"]
    finally:
        pipeline.close()


def test_a_carrier_killed_while_sending_its_group_sends_it_again_and_loses_nothing(
    chat: HttpTarget, fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    # The group's message is slow to be answered: the worker's children die while it is out.
    chat.script([Reply(200, delay_s=2.5), Reply(200)])
    targets = [{"name": "chat", "url": chat.url, **GROUPED, "type": "webhook"}]
    pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets)
    try:
        worker = pipeline.worker("w1", concurrency=2)
        enriched = alerts(*storm(20))
        jobs = pipeline.submit(enriched, ["chat"]).jobs
        wait_until(lambda: chat.received or None, timeout_s=20)
        assert worker.process is not None
        for pid in children(worker.process.pid):
            os.kill(pid, signal.SIGKILL)
        for job in jobs:
            pipeline.wait_state(job.id, JobState.SUCCEEDED, timeout_s=60)

        sent = "\n".join(bodies(chat))
        assert all(e.alert.fingerprint in sent for e in enriched)
        first_key = chat.received[0].headers["Idempotency-Key"]
        # Sent again whole, under the same key: a receiver de-duplicates the group as one message.
        again = [r for r in chat.received[1:] if r.headers["Idempotency-Key"] == first_key]
        assert again and {a["fingerprint"] for a in again[0].json()["alerts"]} >= {
            a["fingerprint"] for a in chat.received[0].json()["alerts"]
        }
        assert pipeline.dlq_rows() == []
    finally:
        pipeline.close()
