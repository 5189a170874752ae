"""The firing-before-resolved gate (``publishing.ordering.OrderGate``), in memory and on
Redis."""

from __future__ import annotations

import pytest

from publishing.adapters.redis.ordering import RedisOrderGate
from publishing.ordering import Gate, GateDecision, OrderGate
from publishing.testing import InMemoryOrderGate
from tests.contract.conftest import TOLERANCE_S, Backend

TARGET, FP = "pd", "fp-1"


@pytest.fixture
def gate(backend: Backend) -> OrderGate:
    if backend.is_redis:
        return RedisOrderGate(backend.redis, prefix="t", ttl_s=60)
    return InMemoryOrderGate(backend.clock)


def test_a_firing_job_goes_when_no_resolve_came_after_it(gate) -> None:
    gate.note_resolved(TARGET, FP, 5.0)
    assert gate.enter(TARGET, FP, "fire", True, 6.0, 1.0) == GateDecision(Gate.GO)


@pytest.mark.parametrize("resolved_at", [10.0, 10.5], ids=["same-instant", "later"])
def test_a_resolve_submitted_at_or_after_a_firing_job_supersedes_it(gate, resolved_at: float) -> None:
    gate.note_resolved(TARGET, FP, resolved_at)
    gate.note_resolved(TARGET, FP, 1.0)  # an older resolve never moves the mark back
    assert gate.enter(TARGET, FP, "fire", True, 10.0, 1.0) == GateDecision(Gate.SUPERSEDED)


def test_resolves_are_per_target_and_fingerprint(gate) -> None:
    gate.note_resolved(TARGET, FP, 10.0)
    assert gate.enter("slack", FP, "a", True, 5.0, 1.0).gate is Gate.GO
    assert gate.enter(TARGET, "fp-2", "b", True, 5.0, 1.0).gate is Gate.GO


def test_a_resolve_waits_for_a_firing_attempt_on_the_wire_until_it_leaves(gate) -> None:
    assert gate.enter(TARGET, FP, "fire", True, 1.0, 2.0).gate is Gate.GO
    waiting = gate.enter(TARGET, FP, "resolve", False, 2.0, 2.0)
    assert waiting.gate is Gate.WAIT
    assert waiting.wait_s == pytest.approx(2.0, abs=TOLERANCE_S)
    gate.leave(TARGET, FP, "someone-else")
    assert gate.enter(TARGET, FP, "resolve", False, 2.0, 2.0).gate is Gate.WAIT
    gate.leave(TARGET, FP, "fire")
    assert gate.enter(TARGET, FP, "resolve", False, 2.0, 2.0) == GateDecision(Gate.GO)


def test_the_in_flight_lease_runs_out_so_a_dead_worker_holds_nothing(gate, backend) -> None:
    gate.enter(TARGET, FP, "fire", True, 1.0, 0.2)
    backend.advance(0.25)
    assert gate.enter(TARGET, FP, "resolve", False, 2.0, 0.2) == GateDecision(Gate.GO)
