"""The API over in-memory fakes of every port (``publishing.testing`` plus the API's own),
for unit tests and schema tests: no Redis, no database, no broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.services import ApiServices, QueueDepth
from publishing.replay import Replayer, ReplayRun
from publishing.routing import QUEUES
from publishing.settings import Settings
from publishing.submission import Submitter
from publishing.target_config import parse_target
from publishing.targets import TargetRegistry
from publishing.testing import (
    FrozenClock,
    InMemoryBreakerStore,
    InMemoryDeadLetterRepository,
    InMemoryDeduplicator,
    InMemoryJobTracker,
    InMemoryReplayRunStore,
    InMemoryTargetHealth,
    RecordingEnqueuer,
)


class InlineReplayRunner:
    """Runs a bulk replay to its end inside ``start``, page by page, as the worker would."""

    def __init__(self, replayer: Replayer, store: InMemoryReplayRunStore, page_size: int = 100) -> None:
        self._replayer = replayer
        self._store = store
        self._page_size = page_size
        self.started: list[str] = []

    def start(self, run: ReplayRun) -> None:
        self.started.append(run.run_id)
        while not run.finished:
            run = self._replayer.replay_page(run, self._page_size)
            self._store.save(run)


@dataclass
class FakeQueues:
    """Queue depths and workers as a test sets them; depths count the recording enqueuer's jobs."""

    enqueuer: RecordingEnqueuer
    worker_names: list[str] | None = field(default_factory=lambda: ["w1@test"])
    oldest_age_s: float | None = None

    def depths(self, *, with_age: bool = False) -> list[QueueDepth]:
        counts = dict.fromkeys(QUEUES, 0)
        for job in self.enqueuer.sent:
            counts[job.priority.value] += 1
        return [
            QueueDepth(q, n, (self.oldest_age_s if n else None) if with_age else None)
            for q, n in counts.items()
        ]

    def workers(self) -> list[str] | None:
        return self.worker_names


@dataclass
class FakeReadiness:
    checks: dict[str, str] = field(default_factory=lambda: {"redis": "ok", "database": "ok"})

    def check(self) -> dict[str, str]:
        return dict(self.checks)


@dataclass
class InMemoryApi:
    """The services handed to ``create_app`` and every fake behind them, for assertions."""

    services: ApiServices
    clock: FrozenClock
    registry: TargetRegistry
    tracker: InMemoryJobTracker
    deduplicator: InMemoryDeduplicator
    enqueuer: RecordingEnqueuer
    dead_letters: InMemoryDeadLetterRepository
    breakers: InMemoryBreakerStore
    replay_runs: InMemoryReplayRunStore
    replay_runner: InlineReplayRunner
    queues: FakeQueues
    readiness: FakeReadiness
    health: InMemoryTargetHealth
    observed: list[Any] = field(default_factory=list)


def in_memory_api(
    targets: Sequence[Mapping[str, Any]] = (),
    *,
    clock: FrozenClock | None = None,
    dedup_window_s: float = 300,
) -> InMemoryApi:
    clock = clock or FrozenClock()
    registry = TargetRegistry(parse_target(dict(t)) for t in targets)
    tracker = InMemoryJobTracker()
    deduplicator = InMemoryDeduplicator(clock)
    enqueuer = RecordingEnqueuer()
    dead_letters = InMemoryDeadLetterRepository()
    breakers = InMemoryBreakerStore(clock)
    replayer = Replayer(dead_letters, registry, tracker, deduplicator, enqueuer, clock=clock)
    runs = InMemoryReplayRunStore()
    runner = InlineReplayRunner(replayer, runs)
    queues = FakeQueues(enqueuer)
    readiness = FakeReadiness()
    health = InMemoryTargetHealth()
    observed: list[Any] = []
    services = ApiServices(
        registry=registry,
        tracker=tracker,
        deduplicator=deduplicator,
        submitter=Submitter(
            registry, tracker, deduplicator, enqueuer, dedup_window_s=dedup_window_s, clock=clock
        ),
        dead_letters=dead_letters,
        breakers=breakers,
        replayer=replayer,
        replay_runs=runs,
        replay_runner=runner,
        queues=queues,
        readiness=readiness,
        health=health,
        clock=clock,
        observe_submission=observed.append,
        observe_rejected=lambda count: observed.append(("rejected", count)),
    )
    return InMemoryApi(
        services, clock, registry, tracker, deduplicator, enqueuer, dead_letters, breakers, runs, runner,
        queues, readiness, health, observed,
    )  # fmt: skip


# Tokens by role for tests (at least 16 characters, as Settings requires).
TOKENS = {
    "reader": "reader-token-0123456789",
    "operator": "operator-token-0123456789",
    "admin": "admin-token-0123456789",
}


def settings_with_tokens(**overrides: Any) -> Settings:
    return Settings(api_tokens={token: role for role, token in TOKENS.items()}, **overrides)


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}
