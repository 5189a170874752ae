"""Per-target health and bulk replay runs in memory."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from publishing.replay import ReplayRun
from publishing.target_health import HealthEvent, TargetHealth


class InMemoryTargetHealth:
    # Breaker transitions kept per target, newest first, as the Redis list is trimmed.
    HISTORY_MAX = 50

    def __init__(self) -> None:
        self._health: dict[str, TargetHealth] = {}

    def record(
        self, target: str, events: list[HealthEvent], at: float, error: str | None = None, client: Any = None
    ) -> None:
        h = self._health.get(target, TargetHealth(target))
        counts, history = dict(h.counts), list(h.breaker_history)
        for event in events:
            counts[event.value] = counts.get(event.value, 0) + 1
            if event is HealthEvent.SUCCESS:
                h = replace(h, last_success_at=at)
            elif event is HealthEvent.FAILURE:
                h = replace(h, last_failure_at=at, last_error=error or None)
            elif event in (HealthEvent.TRIPPED, HealthEvent.RECOVERED):
                history.insert(0, {"event": event.value, "at": at})
        self._health[target] = replace(h, counts=counts, breaker_history=history[: self.HISTORY_MAX])

    def get(self, target: str) -> TargetHealth:
        return self._health.get(target, TargetHealth(target))


class InMemoryReplayRunStore:
    def __init__(self) -> None:
        self.runs: dict[str, ReplayRun] = {}

    def save(self, run: ReplayRun) -> None:
        self.runs[run.run_id] = run

    def get(self, run_id: str) -> ReplayRun | None:
        return self.runs.get(run_id)
