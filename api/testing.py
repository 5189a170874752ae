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


@dataclass(eq=False)
class InlineReplayRunner:
    """Runs a bulk replay to its end inside ``start``, page by page, as the worker would;
    ``started`` lists the runs it was given."""

    replayer: Replayer
    store: InMemoryReplayRunStore
    page_size: int = 100
    started: list[str] = field(default_factory=list, init=False)

    def start(self, run: ReplayRun) -> None:
        self.started.append(run.run_id)
        while not run.finished:
            run = self.replayer.replay_page(run, self.page_size)
            self.store.save(run)


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
    """The services handed to ``create_app`` and every fake behind them, for assertions: the
    fakes are made here, each once, and ``services`` is built over them."""

    clock: FrozenClock
    registry: TargetRegistry
    dedup_window_s: float = 300
    tracker: InMemoryJobTracker = field(default_factory=InMemoryJobTracker)
    enqueuer: RecordingEnqueuer = field(default_factory=RecordingEnqueuer)
    dead_letters: InMemoryDeadLetterRepository = field(default_factory=InMemoryDeadLetterRepository)
    replay_runs: InMemoryReplayRunStore = field(default_factory=InMemoryReplayRunStore)
    readiness: FakeReadiness = field(default_factory=FakeReadiness)
    health: InMemoryTargetHealth = field(default_factory=InMemoryTargetHealth)
    observed: list[Any] = field(default_factory=list)
    # Made from the fakes above.
    deduplicator: InMemoryDeduplicator = field(init=False)
    breakers: InMemoryBreakerStore = field(init=False)
    queues: FakeQueues = field(init=False)
    replay_runner: InlineReplayRunner = field(init=False)
    services: ApiServices = field(init=False)

    def __post_init__(self) -> None:
        clock, registry, tracker, enqueuer = self.clock, self.registry, self.tracker, self.enqueuer
        self.deduplicator = InMemoryDeduplicator(clock)
        self.breakers = InMemoryBreakerStore(clock)
        self.queues = FakeQueues(enqueuer)
        replayer = Replayer(self.dead_letters, registry, tracker, self.deduplicator, enqueuer, clock=clock)
        self.replay_runner = InlineReplayRunner(replayer, self.replay_runs)
        self.services = ApiServices(
            registry=registry,
            tracker=tracker,
            deduplicator=self.deduplicator,
            submitter=Submitter(
                registry,
                tracker,
                self.deduplicator,
                enqueuer,
                dedup_window_s=self.dedup_window_s,
                clock=clock,
            ),
            dead_letters=self.dead_letters,
            breakers=self.breakers,
            replayer=replayer,
            replay_runs=self.replay_runs,
            replay_runner=self.replay_runner,
            queues=self.queues,
            readiness=self.readiness,
            health=self.health,
            clock=clock,
            observe_submission=self.observed.append,
            observe_rejected=lambda count: self.observed.append(("rejected", count)),
        )


def in_memory_api(
    targets: Sequence[Mapping[str, Any]] = (),
    *,
    clock: FrozenClock | None = None,
    dedup_window_s: float = 300,
) -> InMemoryApi:
    registry = TargetRegistry(parse_target(dict(t)) for t in targets)
    return InMemoryApi(clock or FrozenClock(), registry, dedup_window_s=dedup_window_s)


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
