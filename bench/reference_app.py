"""The reference: a minimal Celery app on the same Redis whose one task only POSTs the alert
to the sink. ``celery -A bench.reference_app worker`` runs it.

``BENCH_CELERY_PROFILE=tuned`` (the ceiling) uses our broker options: JSON, acks late,
reject on worker loss, prefetch 1, results ignored, and the product's own transport options
(``publishing.adapters.broker.broker_transport_options``); no task events, no tracking, no breaker.
``naive`` is Celery's defaults (prefetch multiplier 4, acks early, round-robin queue order),
the contrast of the priority-isolation scenario.
"""

from __future__ import annotations

import json
import os
from typing import Any

import requests
from celery import Celery
from requests.adapters import HTTPAdapter

from publishing.adapters.broker import broker_transport_options
from publishing.settings import Settings

TASK = "bench.post"
# Connections kept alive a host, and to Redis: room for every slot of an I/O pool
# (``-P gevent -c 100``), beyond requests' and kombu's default of 10.
POOL_MAXSIZE = 128


def create_reference_app(broker_url: str, profile: str) -> Celery:
    app = Celery("bench_reference", set_as_current=False)
    conf: dict[str, Any] = {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "worker_hijack_root_logger": True,
        "worker_redirect_stdouts": False,
    }
    if profile == "tuned":
        conf.update(
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            # kombu's default of 10 Redis connections fails acks on an I/O pool of 100 slots.
            broker_transport_options={
                **broker_transport_options(Settings(redis_url=broker_url)),
                "max_connections": POOL_MAXSIZE,
            },
        )
    elif profile != "naive":
        raise ValueError(f"BENCH_CELERY_PROFILE={profile!r}: expected tuned or naive")
    app.conf.update(conf)
    app.task(name=TASK, ignore_result=True)(post)
    return app


_sessions: dict[int, requests.Session] = {}


def post(url: str, message: dict[str, Any]) -> int:
    """POST the alert, keyed by the job id, on a keep-alive session of this process."""
    session = _sessions.get(os.getpid())
    if session is None:
        session = _sessions[os.getpid()] = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=POOL_MAXSIZE))
    response = session.post(
        url,
        data=json.dumps(message["alert"], separators=(",", ":")).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": message["job_id"]},
        timeout=(5, 10),
    )
    return response.status_code


def _from_env() -> Celery | None:
    url = os.environ.get("BENCH_BROKER_URL")
    if not url:
        return None
    return create_reference_app(url, os.environ.get("BENCH_CELERY_PROFILE", "tuned"))


app = _from_env()
