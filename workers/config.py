"""The worker's Celery configuration: the producer's (``publishing.adapters.broker``) plus the
at-least-once, priority and time-limit choices of a consuming worker."""

from __future__ import annotations

from typing import Any

from publishing.adapters.broker import broker_config
from publishing.adapters.target_files import load_targets
from publishing.settings import Settings, TimeLimits, time_limits


def task_time_limits(settings: Settings) -> TimeLimits:
    """The publish task's limits from the longest timeout in use: the settings' and every
    configured target's own ``timeout_s`` (``ConfigError`` when one cannot fit, naming it).
    Limits are per task type, so every job gets the longest target's (docs/design.md (Retries))."""
    targets = load_targets(settings.targets_path) if settings.targets_path is not None else []
    return time_limits(settings, {t.name: t.timeout_s for t in targets if t.timeout_s is not None})


def celery_config(settings: Settings) -> dict[str, Any]:
    limits = task_time_limits(settings)
    return {
        **broker_config(settings),
        # At least once: ack after the attempt, and requeue when the worker process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One reserved message per slot: a slot never sits on a low job while high waits.
        "worker_prefetch_multiplier": 1,
        # No worker_eta_task_limit: kombu's QoS caps the increment for a countdown message but
        # not the decrement when it runs, so under a backlog of deferrals the prefetch count
        # drifts down to 1 and one held countdown stalls the worker (measured: 20,000 deferred
        # jobs drained at ~20/s). What a worker holds is bounded by its rate times the
        # longest countdown instead (docs/design.md (Retries)).
        # On a lost broker connection let running attempts finish: cancelling them relies on
        # the unacknowledged copy coming back, and after a Sentinel failover that copy may
        # not have reached the replica. Finishing means at worst a duplicate (same job id).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        # A hung attempt is stopped after its whole timeout, and killed before Redis could hand
        # its message to another worker; the job is then redelivered.
        "task_soft_time_limit": limits.soft_s,
        "task_time_limit": limits.hard_s,
        # On an I/O pool, ask for the next job as soon as a slot frees (workers/green_consumer.py).
        "worker_consumer": "workers.green_consumer:Consumer",
        # Flower shows every job.
        "worker_send_task_events": True,
        "event_queue_expires": 60,
        "event_queue_ttl": 10,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
    }
