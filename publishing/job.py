"""A job: one alert to one target. What a task message carries (no secrets: the target's
name, never its configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from publishing.alert import EnrichedAlert
from publishing.priority import Priority


@dataclass(frozen=True)
class Job:
    job_id: str
    target: str
    priority: Priority
    alert: EnrichedAlert
    submitted_at: float
    # Set on jobs created by a DLQ replay: the row they came from.
    replayed_from: str | None = None
    # The fallback target this job is being sent to while its own target is down.
    via: str | None = None
    # Retries spent (transient and unknown failures); deferrals and DLQ-write retries are
    # Celery retries too but do not count here.
    retries: int = 0
    last_retry_at: float | None = None
    # Breaker deferrals so far: they are Celery retries too, but spend no retry budget.
    deferrals: int = 0
    deferred_since: float | None = None
    # Set once delivery has failed for good (``error_type``, ``error``, ``failed_at`` and the
    # DLQ ``writes`` tried): while its row is not written (the database is down) every run
    # writes the row instead of publishing again.
    failure: Mapping[str, Any] | None = None
    # Times the worker itself failed on this job (a bug, not the target): bounded, then DLQ.
    crashes: int = 0

    def to_message(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "target": self.target,
            "priority": self.priority.value,
            "alert": self.alert.to_dict(),
            "submitted_at": self.submitted_at,
            "replayed_from": self.replayed_from,
            "via": self.via,
            "retries": self.retries,
            "last_retry_at": self.last_retry_at,
            "deferrals": self.deferrals,
            "deferred_since": self.deferred_since,
            "failure": dict(self.failure) if self.failure else None,
            "crashes": self.crashes,
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            job_id=str(data["job_id"]),
            target=str(data["target"]),
            priority=Priority(data["priority"]),
            alert=EnrichedAlert.from_dict(data["alert"]),
            submitted_at=float(data["submitted_at"]),
            replayed_from=data.get("replayed_from"),
            via=data.get("via"),
            retries=int(data.get("retries") or 0),
            last_retry_at=data.get("last_retry_at"),
            deferrals=int(data.get("deferrals") or 0),
            deferred_since=data.get("deferred_since"),
            # "dead_letter" is how messages sent before the rename carry it.
            failure=data.get("failure") or data.get("dead_letter"),
            crashes=int(data.get("crashes") or 0),
        )

    @property
    def attempt_key(self) -> str:
        """Names this attempt: a message started more than once under the same key was
        redelivered (its worker died mid-attempt)."""
        return f"{self.retries}.{self.deferrals}.{1 if self.failure else 0}"

    def evolve(self, **changes: Any) -> Job:
        return replace(self, **changes)
