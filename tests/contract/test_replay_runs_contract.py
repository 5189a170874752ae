"""Bulk replay runs' progress (``publishing.replay.ReplayRunStore``), in memory and on Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from publishing.adapters.redis.replay_runs import RedisReplayRunStore
from publishing.dlq import DLQFilter
from publishing.priority import Priority
from publishing.replay import ReplayRun, ReplayRunStore, RunState
from publishing.testing import InMemoryReplayRunStore
from tests.contract.conftest import Backend


@pytest.fixture
def runs(backend: Backend) -> ReplayRunStore:
    if backend.is_redis:
        return RedisReplayRunStore(backend.redis, "t")
    return InMemoryReplayRunStore()


def run(run_id: str = "run-1") -> ReplayRun:
    query = DLQFilter(target="pd", priority=Priority.HIGH)
    cut = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return ReplayRun(run_id, query, cut, total=7, started_at=1_767_322_000.5)


def test_a_saved_run_reads_back_and_a_later_save_replaces_it(runs) -> None:
    first = run()
    runs.save(first)
    assert runs.get("run-1") == first
    progressed = replace(
        first,
        state=RunState.DONE,
        done=3,
        failed=1,
        skipped=2,
        kept=1,
        pages=2,
        finished_at=1_767_322_010.25,
        error="page 2 failed",
    )
    runs.save(progressed)
    assert runs.get("run-1") == progressed
    assert runs.get("run-2") is None


def test_a_dry_run_keeps_its_flag_and_an_empty_filter(runs) -> None:
    dry = ReplayRun("run-dry", DLQFilter(), datetime(2026, 1, 2, tzinfo=UTC), dry_run=True)
    runs.save(dry)
    assert runs.get("run-dry") == dry
