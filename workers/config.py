"""Celery configuration from our settings: the at-least-once and priority choices in one place."""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from publishing.settings import Settings
from workers.routing import QUEUES


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    sentinel = {"master_name": settings.redis_sentinel_master} if is_sentinel(settings.redis_url) else {}
    return {
        **sentinel,
        # Every process (API, workers, Flower) must agree on this; it outlasts the longest
        # countdown a worker holds as an ETA message (Settings checks that at start-up).
        "visibility_timeout": settings.visibility_timeout_s,
        # Fetch in the fixed order high, medium, low instead of rotating the queues.
        "queue_order_strategy": "priority",
        # We route priority by queue, not by message priority: one Redis list a queue, so
        # a fetch is one BRPOP over three keys instead of twelve.
        "priority_steps": [0],
        # Sweep for messages of dead workers every 5 s (one ZRANGE), not every 100 s, and let a
        # sweeper that died free the sweep mutex soon.
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 60,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
    }


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")


def celery_config(settings: Settings) -> dict[str, Any]:
    exchange = Exchange("publishing", type="direct")
    longest_task_s = 3 * max(settings.http_timeout_s, 1.0) + 30
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_queues": tuple(Queue(q, exchange, routing_key=q) for q in QUEUES),
        "task_default_queue": "medium",
        "task_default_exchange": "publishing",
        "task_default_routing_key": "medium",
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
        # Flower shows every job, from the moment it is sent.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "event_queue_expires": 60,
        "event_queue_ttl": 10,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
    }
