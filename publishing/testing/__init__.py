"""In-memory implementations of every port, for unit tests and local experiments.

They follow the same contracts as the Redis and SQL implementations: ``tests/contract`` runs
one suite over each fake and its Redis adapter.

One module a port; import them from here."""

from publishing.testing.breaker import InMemoryBreakerStore
from publishing.testing.broker import RecordingEnqueuer
from publishing.testing.clock import FrozenClock
from publishing.testing.dlq import InMemoryDeadLetterRepository
from publishing.testing.health import InMemoryReplayRunStore, InMemoryTargetHealth
from publishing.testing.history import InMemoryHistoryRepository
from publishing.testing.ordering import InMemoryOrderGate
from publishing.testing.parking import InMemoryParkingLot
from publishing.testing.publisher import Answer, PublishCall, RecordingPublisher
from publishing.testing.targets import InMemoryTargetSource
from publishing.testing.tracking import InMemoryDeduplicator, InMemoryJobTracker

__all__ = [
    "Answer",
    "FrozenClock",
    "InMemoryBreakerStore",
    "InMemoryDeadLetterRepository",
    "InMemoryDeduplicator",
    "InMemoryHistoryRepository",
    "InMemoryJobTracker",
    "InMemoryOrderGate",
    "InMemoryParkingLot",
    "InMemoryReplayRunStore",
    "InMemoryTargetHealth",
    "InMemoryTargetSource",
    "PublishCall",
    "RecordingEnqueuer",
    "RecordingPublisher",
]
