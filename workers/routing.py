"""Task names and queues: one table, stable names (they are what Flower and the API see)."""

from __future__ import annotations

from publishing.priority import Priority

PUBLISH_TASK = "publishing.publish"
REPLAY_BATCH_TASK = "publishing.replay_batch"

QUEUES: tuple[str, ...] = tuple(p.value for p in Priority)  # high, medium, low: fetch order


def queue_for(priority: Priority) -> str:
    return priority.value
