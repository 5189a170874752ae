"""Firing before resolved (per alert fingerprint and target).

A ``resolved`` notification must never reach a target before a ``firing`` one for the same
alert that is still pending. We supersede rather than hold the resolve: once a resolve for
an alert is submitted, a firing job for it that has not been delivered yet is marked
``superseded`` and never sent, because paging someone for an alert that has already
resolved is the noise an on-call pipeline exists to avoid, while the resolve itself is
harmless to a target that never saw the firing. A firing attempt already on the wire holds
a short lease that makes the resolve wait for it, so the two can never cross.

"Before" and "after" are read on the gate's own clock (Redis's, as the breaker's), never on
the API hosts': each submission is noted with the gate when it is tracked, and a firing is
superseded by a resolve noted at or after its own note. Two API hosts whose clocks disagree
cannot reorder them.

A target with ``resolve_only_if_fired`` also has its resolves held to a firing that reached it
(prometheus/alertmanager#878): the gate notes each firing delivered, and a resolve of an alert
with none (never sent, or superseded) is superseded in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Gate(StrEnum):
    GO = "go"
    SUPERSEDED = "superseded"
    WAIT = "wait"


@dataclass(frozen=True)
class GateDecision:
    gate: Gate
    wait_s: float = 0.0


@dataclass(frozen=True)
class GateNote:
    """A job of this alert and target was submitted: a firing one (``job_id``) or a resolve."""

    target: str
    fingerprint: str
    job_id: str
    firing: bool


@dataclass(frozen=True, slots=True)
class GateExit:
    """A firing attempt is over: it leaves the gate (``OrderGate.leave``), ``delivered`` or not.
    Handed back to the caller of an attempt, so the leave goes in the attempt's settlement
    (one round trip, docs/design.md (Firing before resolved))."""

    target: str
    fingerprint: str
    job_id: str
    delivered: bool


@dataclass(frozen=True, slots=True)
class GateEntry:
    """An attempt of a job asks the gate: ``submitted_at`` on the API host's clock, the
    in-flight lease ``lease_s`` a firing attempt holds, and ``require_fired`` for a target that
    takes a resolve only of an alert it was sent firing."""

    target: str
    fingerprint: str
    job_id: str
    firing: bool
    submitted_at: float
    lease_s: float
    require_fired: bool = False


class OrderGate(Protocol):
    def note(self, notes: Sequence[GateNote]) -> None:
        """These jobs were submitted, now on the gate's clock (one round trip). A resolve moves
        the alert's resolved mark to now; a firing job keeps its first note (a job tracked
        again under the same id, a taken-over claim, is the same submission)."""
        ...

    def enter(self, entry: GateEntry) -> GateDecision:
        """Before an attempt: a firing job learns whether a resolve noted at or after its own
        note superseded it (and otherwise holds the in-flight lease); a resolve learns whether
        a firing attempt is on the wire, and, with ``require_fired``, is superseded when no
        firing of the alert was delivered to the target. ``submitted_at`` (the API host's
        clock) is compared only for a firing job that was never noted (a job queued before
        notes existed)."""
        ...

    def leave(self, target: str, fingerprint: str, job_id: str, delivered: bool = False) -> None:
        """After a firing attempt: drop its in-flight lease, and note whether it was delivered."""
        ...
