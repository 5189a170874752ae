"""Submission claims (``publishing.tracking.Deduplicator``): new, pending, duplicate, taken
over, released and marked alike in memory and on Redis."""

from __future__ import annotations

import pytest

from publishing.adapters.redis.dedup import RedisDeduplicator
from publishing.testing import InMemoryDeduplicator
from publishing.tracking import Claim, ClaimStatus, Deduplicator
from tests.contract.conftest import Backend

NEW, PENDING, DUPLICATE, TAKEN_OVER = (
    ClaimStatus.NEW,
    ClaimStatus.PENDING,
    ClaimStatus.DUPLICATE,
    ClaimStatus.TAKEN_OVER,
)


@pytest.fixture
def dedup(backend: Backend) -> Deduplicator:
    if backend.is_redis:
        return RedisDeduplicator(backend.redis, "t")
    return InMemoryDeduplicator(backend.clock)


def test_a_claim_is_new_then_pending_until_enqueued_then_a_duplicate(dedup) -> None:
    assert dedup.claim_many([("k", "job-1")], 10, 5) == [Claim(NEW, "job-1")]
    assert dedup.claim_many([("k", "job-2")], 10, 5) == [Claim(PENDING, "job-1")]
    dedup.mark_enqueued([("k", "job-1")])
    assert dedup.claim_many([("k", "job-3")], 10, 5) == [Claim(DUPLICATE, "job-1")]


def test_one_call_claims_many_keys_in_order(dedup) -> None:
    dedup.claim_many([("a", "job-a")], 10, 5)
    assert dedup.claim_many([("a", "job-1"), ("b", "job-2"), ("b", "job-3")], 10, 5) == [
        Claim(PENDING, "job-a"),
        Claim(NEW, "job-2"),
        Claim(PENDING, "job-2"),
    ]


def test_a_claim_ends_with_its_window(dedup, backend) -> None:
    dedup.claim_many([("k", "job-1")], 0.2, 5)
    dedup.mark_enqueued([("k", "job-1")])
    backend.advance(0.25)
    assert dedup.claim_many([("k", "job-2")], 0.2, 5) == [Claim(NEW, "job-2")]


def test_a_pending_claim_past_its_grace_is_taken_over_under_its_job_id(dedup, backend) -> None:
    dedup.claim_many([("k", "job-1")], 10, 0.2)  # its request dies before enqueueing
    backend.advance(0.25)
    assert dedup.claim_many([("k", "job-2")], 10, 0.2) == [Claim(TAKEN_OVER, "job-1")]
    # The taker holds it now, for a fresh grace period.
    assert dedup.claim_many([("k", "job-3")], 10, 0.2) == [Claim(PENDING, "job-1")]
    dedup.mark_enqueued([("k", "job-1")])
    assert dedup.claim_many([("k", "job-4")], 10, 0.2) == [Claim(DUPLICATE, "job-1")]


def test_an_enqueued_claim_is_never_taken_over(dedup, backend) -> None:
    dedup.claim_many([("k", "job-1")], 10, 0.1)
    dedup.mark_enqueued([("k", "job-1")])
    backend.advance(0.15)
    assert dedup.claim_many([("k", "job-2")], 10, 0.1) == [Claim(DUPLICATE, "job-1")]


def test_release_and_mark_touch_only_the_callers_own_pending_claim(dedup) -> None:
    dedup.claim_many([("k", "job-1"), ("e", "job-9")], 10, 5)
    dedup.mark_enqueued([("e", "job-9"), ("k", "someone-else")])
    dedup.release_many([("k", "someone-else"), ("e", "job-9")])
    assert dedup.claim_many([("k", "job-2"), ("e", "job-2")], 10, 5) == [
        Claim(PENDING, "job-1"),
        Claim(DUPLICATE, "job-9"),
    ]
    dedup.release_many([("k", "job-1")])
    assert dedup.claim_many([("k", "job-2")], 10, 5) == [Claim(NEW, "job-2")]
