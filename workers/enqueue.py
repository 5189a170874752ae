"""The submission port on Celery: a job becomes a ``publishing.publish`` message on the queue
of its priority, sent by task name (so the API never imports task modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from publishing.job import Job
from workers.routing import PUBLISH_TASK, queue_for


class CeleryEnqueuer:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue(self, job: Job) -> None:
        self._send(job)

    def enqueue_many(self, jobs: Sequence[Job]) -> None:
        """Every job of a request in one Redis round trip (kombu's publish batch: the messages
        and their task-sent events go out in one pipeline). On an error, any of them may or may
        not have been sent."""
        if len(jobs) == 1:
            self._send(jobs[0])
            return
        with self._app.producer_or_acquire() as producer, producer.batch():
            for job in jobs:
                self._send(job, producer)

    def _send(self, job: Job, producer: Any = None) -> None:
        queue = queue_for(job.priority)
        self._app.send_task(
            PUBLISH_TASK,
            kwargs={"message": job.to_message()},
            task_id=job.job_id,
            queue=queue,
            routing_key=queue,
            producer=producer,
            # Flower and the worker logs show this instead of the whole alert: cheaper to build,
            # smaller on the wire, and enough to find the job.
            argsrepr="()",
            kwargsrepr=f"{{job {job.job_id} to {job.target}, {job.priority.value}}}",
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 1},
        )
