"""Firing before resolved (per alert fingerprint and target).

A ``resolved`` notification must never reach a target before a ``firing`` one for the same
alert that is still pending. We supersede rather than hold the resolve: once a resolve for
an alert is submitted, a firing job for it that has not been delivered yet is marked
``superseded`` and never sent, because paging someone for an alert that has already
resolved is the noise an on-call pipeline exists to avoid, while the resolve itself is
harmless to a target that never saw the firing. A firing attempt already on the wire holds
a short lease that makes the resolve wait for it, so the two can never cross.
"""

from __future__ import annotations

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


class OrderGate(Protocol):
    def note_resolved(self, target: str, fingerprint: str, submitted_at: float) -> None:
        """A resolve for this alert and target was submitted at ``submitted_at``."""
        ...

    def enter(
        self, target: str, fingerprint: str, job_id: str, firing: bool, submitted_at: float, lease_s: float
    ) -> GateDecision:
        """Before an attempt: a firing job learns whether a later resolve superseded it (and
        otherwise holds the in-flight lease); a resolve learns whether a firing attempt is
        on the wire."""
        ...

    def leave(self, target: str, fingerprint: str, job_id: str) -> None:
        """After a firing attempt: drop its in-flight lease."""
        ...
