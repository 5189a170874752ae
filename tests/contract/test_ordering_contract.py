"""The firing-before-resolved gate (``publishing.ordering.OrderGate``), in memory and on
Redis."""

from __future__ import annotations

import pytest

from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.ordering import Gate, GateDecision, GateEntry, GateNote, OrderGate
from publishing.testing import InMemoryOrderGate
from tests.contract.conftest import TOLERANCE_S, Backend

TARGET, FP = "pd", "fp-1"


@pytest.fixture
def gate(backend: Backend) -> OrderGate:
    if backend.is_redis:
        return RedisOrderGate(backend.redis, prefix="t", ttl_s=60)
    return InMemoryOrderGate(backend.clock)


def resolve(target: str = TARGET, fingerprint: str = FP) -> GateNote:
    return GateNote(target, fingerprint, "resolve", firing=False)


def firing(job_id: str = "fire", target: str = TARGET, fingerprint: str = FP) -> GateNote:
    return GateNote(target, fingerprint, job_id, firing=True)


# ``submitted_at`` below is what an API host's clock said: the gate must not care.
SKEWED_AHEAD, SKEWED_BEHIND = 1e10, 1.0


def test_a_firing_job_goes_when_no_resolve_came_after_it(gate, backend) -> None:
    gate.note([resolve()])
    backend.advance(0.01)
    gate.note([firing()])
    # Its API host's clock ran far behind the resolve's: no matter.
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, SKEWED_BEHIND, 1.0)) == GateDecision(Gate.GO)


def test_a_resolve_noted_after_a_firing_job_supersedes_it_whatever_the_api_clocks(gate, backend) -> None:
    gate.note([firing()])
    backend.advance(0.01)
    gate.note([resolve()])
    # The firing's API host's clock ran far ahead of the resolve's: no matter.
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, SKEWED_AHEAD, 1.0)) == GateDecision(Gate.SUPERSEDED)


def test_a_firing_job_keeps_its_first_note(gate, backend) -> None:
    gate.note([firing()])
    backend.advance(0.01)
    gate.note([resolve()])
    backend.advance(0.01)
    gate.note([firing()])  # tracked again under the same id (a claim taken over)
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, SKEWED_AHEAD, 1.0)).gate is Gate.SUPERSEDED


def test_a_resolve_in_the_same_batch_as_a_firing_supersedes_it(gate) -> None:
    gate.note([firing(), resolve()])
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, SKEWED_AHEAD, 1.0)).gate is Gate.SUPERSEDED


def test_a_firing_job_never_noted_is_compared_by_its_submission_time(gate) -> None:
    gate.note([resolve()])
    assert gate.enter(GateEntry(TARGET, FP, "old", True, SKEWED_BEHIND, 1.0)).gate is Gate.SUPERSEDED
    assert gate.enter(GateEntry(TARGET, FP, "old", True, SKEWED_AHEAD, 1.0)).gate is Gate.GO


def test_resolves_are_per_target_and_fingerprint(gate, backend) -> None:
    gate.note([firing("a", target="slack"), firing("b", fingerprint="fp-2")])
    backend.advance(0.01)
    gate.note([resolve()])
    assert gate.enter(GateEntry("slack", FP, "a", True, 5.0, 1.0)).gate is Gate.GO
    assert gate.enter(GateEntry(TARGET, "fp-2", "b", True, 5.0, 1.0)).gate is Gate.GO


def test_a_resolve_waits_for_a_firing_attempt_on_the_wire_until_it_leaves(gate) -> None:
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 2.0)).gate is Gate.GO
    waiting = gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 2.0))
    assert waiting.gate is Gate.WAIT
    assert waiting.wait_s == pytest.approx(2.0, abs=TOLERANCE_S)
    gate.leave(TARGET, FP, "someone-else")
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 2.0)).gate is Gate.WAIT
    gate.leave(TARGET, FP, "fire")
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 2.0)) == GateDecision(Gate.GO)


def test_the_in_flight_lease_runs_out_so_a_dead_worker_holds_nothing(gate, backend) -> None:
    gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 0.2))
    backend.advance(0.25)
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 0.2)) == GateDecision(Gate.GO)


# --- resolve_only_if_fired: the gate remembers a delivered firing -----------------------------


def test_a_resolve_that_requires_a_fired_alert_is_superseded_without_one(gate) -> None:
    gate.note([resolve()])
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 1.0, require_fired=True)) == GateDecision(
        Gate.SUPERSEDED
    )
    # Without the requirement, the same resolve goes.
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 1.0)) == GateDecision(Gate.GO)


def test_a_delivered_firing_lets_a_resolve_that_requires_it_go(gate, backend) -> None:
    gate.note([firing()])
    assert gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 1.0)).gate is Gate.GO
    gate.leave(TARGET, FP, "fire", delivered=True)
    backend.advance(0.01)
    gate.note([resolve()])
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 1.0, require_fired=True)) == GateDecision(
        Gate.GO
    )


def test_a_firing_attempt_that_was_not_delivered_does_not_count(gate) -> None:
    gate.note([firing()])
    gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 1.0))
    gate.leave(TARGET, FP, "fire")
    gate.note([resolve()])
    assert (
        gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 1.0, require_fired=True)).gate
        is Gate.SUPERSEDED
    )


def test_a_fired_mark_is_per_target_and_fingerprint(gate) -> None:
    gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 1.0))
    gate.leave(TARGET, FP, "fire", delivered=True)
    assert (
        gate.enter(GateEntry("slack", FP, "r1", False, 2.0, 1.0, require_fired=True)).gate is Gate.SUPERSEDED
    )
    assert (
        gate.enter(GateEntry(TARGET, "fp-2", "r2", False, 2.0, 1.0, require_fired=True)).gate
        is Gate.SUPERSEDED
    )
    assert gate.enter(GateEntry(TARGET, FP, "r3", False, 2.0, 1.0, require_fired=True)).gate is Gate.GO


def test_a_resolve_that_requires_a_fired_alert_still_waits_for_one_on_the_wire(gate) -> None:
    gate.enter(GateEntry(TARGET, FP, "fire", True, 1.0, 2.0))
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 2.0, require_fired=True)).gate is Gate.WAIT
    gate.leave(TARGET, FP, "fire", delivered=True)
    assert gate.enter(GateEntry(TARGET, FP, "resolve", False, 2.0, 2.0, require_fired=True)).gate is Gate.GO
