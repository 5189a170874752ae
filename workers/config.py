"""The worker's Celery configuration: the producer's (``publishing.adapters.broker``) plus the
at-least-once, priority and time-limit choices of a consuming worker."""

from __future__ import annotations

from typing import Any

from publishing.adapters.broker import broker_config
from publishing.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    longest_task_s = 3 * max(settings.http_timeout_s, 1.0) + 30
    return {
        **broker_config(settings),
        # At least once: ack after the attempt, and requeue when the worker process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One reserved message per slot: a slot never sits on a low job while high waits.
        "worker_prefetch_multiplier": 1,
        # On a lost broker connection let running attempts finish: cancelling them relies on
        # the unacknowledged copy coming back, and after a Sentinel failover that copy may
        # not have reached the replica. Finishing means at worst a duplicate (same job id).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        # A hung attempt is killed long after its HTTP timeout; the job is then redelivered.
        "task_soft_time_limit": longest_task_s,
        "task_time_limit": longest_task_s + 10,
        # Flower shows every job.
        "worker_send_task_events": True,
        "event_queue_expires": 60,
        "event_queue_ttl": 10,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
    }
