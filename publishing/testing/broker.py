"""A broker that records what a submission would send."""

from __future__ import annotations

from typing import Any


class RecordingEnqueuer:
    """Collects the jobs a submission would send to the broker."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def enqueue(self, job: Any) -> None:
        self.sent.append(job)

    def enqueue_many(self, jobs: Any) -> None:
        for job in jobs:
            self.enqueue(job)
