"""Kombu's unacknowledged records and acknowledgements sent through a worker's group commit
(``workers.green_consumer.SharedRoundTripQoS``) against a real Redis: kombu's own restore reads
what they write, an acknowledgement removes the message for good, and one whose round trip
fails leaves the message to be given back, as kombu's own would. A worker shares them only
where its jobs' client batches and talks to the broker's own database, unprefixed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection
from kombu.transport import redis as redis_transport

from publishing.adapters import capacity
from publishing.adapters.composition import forget_services
from publishing.adapters.redis.batching import PipelineBatcher
from publishing.settings import Settings
from workers.celery_app import create_celery_app
from workers.green_consumer import SharedRoundTripQoS, share_round_trips
from workers.observability import _use_pool

pytestmark = pytest.mark.redis

QUEUE = "medium"


@pytest.fixture
def channel(fresh_redis: str) -> Iterator[object]:
    with Connection(fresh_redis) as connection:
        channel = connection.default_channel
        channel.queue_declare(QUEUE)
        qos = channel.qos
        qos.__class__ = SharedRoundTripQoS
        qos.batcher = PipelineBatcher(redis.Redis.from_url(fresh_redis))
        yield channel


def _handed_over(channel: object, body: str) -> Any:
    """A message published and then fetched, unacknowledged, as a worker fetches one."""
    channel.basic_publish(channel.prepare_message(body), exchange="", routing_key=QUEUE)  # type: ignore[attr-defined]
    message = channel.basic_get(QUEUE, no_ack=False)  # type: ignore[attr-defined]
    assert message is not None
    return message


def test_a_message_handed_over_is_recorded_where_kombus_restore_finds_it(
    channel: object, fresh_redis: str
) -> None:
    client = redis.Redis.from_url(fresh_redis)
    message = _handed_over(channel, "page one")
    assert client.llen(QUEUE) == 0
    assert client.hexists("unacked", message.delivery_tag)
    assert client.zscore("unacked_index", message.delivery_tag) is not None

    # The worker stops without acknowledging it: kombu's own restore puts it back.
    channel.qos.restore_unacked()  # type: ignore[attr-defined]
    assert client.llen(QUEUE) == 1
    again = channel.basic_get(QUEUE, no_ack=False)  # type: ignore[attr-defined]
    assert again.body == b"page one"


def test_an_acknowledgement_removes_the_message_for_good(channel: object, fresh_redis: str) -> None:
    client = redis.Redis.from_url(fresh_redis)
    message = _handed_over(channel, "page two")
    message.ack()
    assert client.hlen("unacked") == 0
    assert client.zcard("unacked_index") == 0
    channel.qos.restore_unacked()  # type: ignore[attr-defined]
    assert client.llen(QUEUE) == 0


def test_an_acknowledgement_that_cannot_reach_redis_leaves_the_message_to_be_given_back(
    channel: object, fresh_redis: str
) -> None:
    client = redis.Redis.from_url(fresh_redis)
    message = _handed_over(channel, "page three")
    qos = channel.qos  # type: ignore[attr-defined]
    working = qos.batcher
    qos.batcher = PipelineBatcher(redis.Redis(port=1, socket_connect_timeout=0.5))
    with pytest.raises(redis.ConnectionError):
        message.ack()
    qos.batcher = working
    # Still held as delivered and still recorded: a stop gives it back to the queue.
    assert message.delivery_tag in qos._delivered
    qos.restore_unacked()
    assert client.llen(QUEUE) == 1


# When a worker shares kombu's writes (``share_round_trips``): only where the broker and the
# jobs' client are one Redis database and that client batches.


@pytest.fixture
def worker_app(fresh_redis: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    monkeypatch.setattr(capacity, "_slots", None)
    app = create_celery_app(Settings(redis_url=fresh_redis))
    yield app
    forget_services()


@contextmanager
def _channel(url: str, **options: Any) -> Iterator[Any]:
    with Connection(url, transport_options=options) as connection:
        yield connection.default_channel


def test_an_io_pool_on_the_brokers_own_database_shares(worker_app: Celery, fresh_redis: str) -> None:
    _use_pool(worker_app, "threads", 10)
    with _channel(fresh_redis) as channel:
        assert share_round_trips(worker_app, channel)
        assert type(channel.qos) is SharedRoundTripQoS
        # Once is enough: a reconnected loop finds it done.
        assert share_round_trips(worker_app, channel)


def test_a_prefork_worker_keeps_kombus_own_writes(worker_app: Celery, fresh_redis: str) -> None:
    _use_pool(worker_app, "prefork", 4)
    with _channel(fresh_redis) as channel:
        assert not share_round_trips(worker_app, channel)
        assert type(channel.qos) is redis_transport.QoS


def test_a_broker_on_another_database_keeps_kombus_own_writes(worker_app: Celery, fresh_redis: str) -> None:
    _use_pool(worker_app, "threads", 10)
    db = int(fresh_redis.rsplit("/", 1)[1])
    elsewhere = f"{fresh_redis.rsplit('/', 1)[0]}/{(db + 1) % 16}"
    with _channel(elsewhere) as channel:
        assert not share_round_trips(worker_app, channel)
        assert type(channel.qos) is redis_transport.QoS


def test_a_prefixed_broker_keeps_kombus_own_writes(worker_app: Celery, fresh_redis: str) -> None:
    _use_pool(worker_app, "threads", 10)
    with _channel(fresh_redis, global_keyprefix="other:") as channel:
        assert not share_round_trips(worker_app, channel)
        assert type(channel.qos) is redis_transport.QoS
