"""What the broker holds, read straight from Redis: kombu keeps each queue as one list (new
messages pushed on the left, fetched from the right; ``priority_steps=[0]`` means no
per-priority sub-lists)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import redis

from publishing.routing import QUEUES, QueueDepth

# Messages read from a queue's tail to find the oldest job (a replay page carries no
# submission time, so the very last message may not tell).
TAIL_SCAN = 5


def submitted_at(raw: bytes) -> float | None:
    """The ``submitted_at`` of the job a kombu message carries, if it carries one."""
    try:
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _, kwargs, _ = json.loads(body)
        return float(kwargs["message"]["submitted_at"])
    except (ValueError, KeyError, TypeError):
        return None


def queue_depths(
    client: redis.Redis, *, with_age: bool = False, now: float | None = None
) -> list[QueueDepth]:
    """Waiting messages by queue (high, medium, low), in one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
        if with_age:
            pipe.lrange(queue, -TAIL_SCAN, -1)
    replies: list[Any] = pipe.execute()
    step = 2 if with_age else 1
    depth = dict.fromkeys(QUEUES, 0)
    oldest: dict[str, float | None] = dict.fromkeys(QUEUES)
    now = time.time() if now is None else now
    for i, queue in enumerate(QUEUES):
        depth[queue] = int(replies[i * step])
        if with_age:
            # The tail is the oldest: read it from the right.
            for raw in reversed(replies[i * step + 1]):
                at = submitted_at(raw)
                if at is not None:
                    oldest[queue] = max(max(0.0, now - at), oldest[queue] or 0.0)
                    break
    return [QueueDepth(q, depth[q], oldest[q] if with_age else None) for q in QUEUES]


def pending(client: redis.Redis, queue: str) -> int:
    """Messages waiting on one queue."""
    return int(client.llen(queue))
