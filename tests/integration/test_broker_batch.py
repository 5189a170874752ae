"""A request's jobs enqueued at once (``CeleryEnqueuer.enqueue_many``) are the very messages
``send_task`` sends one by one: what a worker, Flower and the reconciler read must not depend
on which path sent a job. Each queue gets its jobs in the request's order."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis

from publishing.adapters.broker import CeleryEnqueuer, producer_app
from publishing.alert import parse_alertmanager
from publishing.job import Job
from publishing.priority import priority_of
from publishing.settings import Settings

pytestmark = pytest.mark.redis


def jobs(*severities: str) -> list[Job]:
    raw = [
        {
            "status": "firing",
            "labels": {"alertname": f"A{i}", "severity": s},
            "startsAt": "2026-01-01T00:00:00Z",
        }
        for i, s in enumerate(severities)
    ]
    return [
        Job(f"job-{i}", "hook", priority_of(a), a, submitted_at=1.0)
        for i, a in enumerate(parse_alertmanager({"alerts": raw}))
    ]


def decoded(raw: bytes) -> dict[str, Any]:
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    for volatile in ("delivery_tag", "reply_to"):
        message["properties"].pop(volatile, None)
    return message


@pytest.fixture
def enqueuer(fresh_redis: str) -> CeleryEnqueuer:
    app = producer_app(Settings.from_env({"REDIS_URL": fresh_redis, "PUBLISHING_INSECURE_NO_AUTH": "1"}))
    return CeleryEnqueuer(app)


def test_a_job_enqueued_with_its_request_is_the_message_send_task_sends(
    enqueuer: CeleryEnqueuer, fresh_redis: str
) -> None:
    client = redis.Redis.from_url(fresh_redis)
    (job,) = jobs("critical")
    enqueuer.enqueue(job)
    one_by_one = decoded(client.rpop("high"))  # type: ignore[arg-type]
    enqueuer.enqueue_many([job])
    at_once = decoded(client.rpop("high"))  # type: ignore[arg-type]
    assert at_once == one_by_one


def test_each_queue_gets_its_jobs_in_the_request_order(enqueuer: CeleryEnqueuer, fresh_redis: str) -> None:
    client = redis.Redis.from_url(fresh_redis)
    request = jobs("critical", "warning", "critical", "info", "warning")
    enqueuer.enqueue_many(request)
    taken = {
        queue: [decoded(raw)["headers"]["id"] for raw in reversed(client.lrange(queue, 0, -1))]
        for queue in ("high", "medium", "low")
    }
    assert taken == {"high": ["job-0", "job-2"], "medium": ["job-1", "job-4"], "low": ["job-3"]}


def test_a_failed_transaction_names_redis_and_may_have_sent_part_of_the_request(
    enqueuer: CeleryEnqueuer, fresh_redis: str
) -> None:
    # Redis refuses one command of the transaction (a queue key of the wrong type) and still
    # runs the others: the caller hears a Redis error (the API answers 503 naming Redis) and
    # must treat every job of the request as possibly sent, which the submitter does.
    client = redis.Redis.from_url(fresh_redis)
    client.set("low", "not a list")
    with pytest.raises(redis.RedisError):
        enqueuer.enqueue_many(jobs("critical", "info"))
    assert client.llen("high") == 1
