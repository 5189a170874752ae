"""Task names and queues: one table, stable names (they are what Flower and the API see)."""

from __future__ import annotations

from dataclasses import dataclass

from publishing.priority import Priority

PUBLISH_TASK = "publishing.publish"
REPLAY_BATCH_TASK = "publishing.replay_batch"

QUEUES: tuple[str, ...] = tuple(p.value for p in Priority)  # high, medium, low: fetch order


def queue_for(priority: Priority) -> str:
    return priority.value


# Bulk replay pages run on the low queue, so a replay never holds a slot a new page needs.
REPLAY_QUEUE = queue_for(Priority.LOW)


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    depth: int
    oldest_age_s: float | None = None
