"""The submission port on Celery: a job becomes a ``publishing.publish`` message on the queue
of its priority, sent by task name (so the API never imports task modules)."""

from __future__ import annotations

from celery import Celery

from publishing.job import Job
from workers.routing import PUBLISH_TASK, queue_for


class CeleryEnqueuer:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue(self, job: Job) -> None:
        queue = queue_for(job.priority)
        self._app.send_task(
            PUBLISH_TASK,
            kwargs={"message": job.to_message()},
            task_id=job.job_id,
            queue=queue,
            routing_key=queue,
            # Flower and the worker logs show this instead of the whole alert: cheaper to build,
            # smaller on the wire, and enough to find the job.
            argsrepr="()",
            kwargsrepr=f"{{job {job.job_id} to {job.target}, {job.priority.value}}}",
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 1},
        )
