"""The consumer of a worker on an I/O pool (gevent): it asks for more work as soon as a slot is
free (docs/operations.md (Worker pools)).

Such a worker runs Celery's blocking loop, which waits for broker events up to 2 s at a time.
Once every slot holds a job, kombu's Redis transport stops its BRPOP (no credit) and the wait
then ends only on another socket's event (the remote-control channel) or the 2 s: a slot that
frees in between stays idle until then, and a storm drains in bursts of one pool's worth. While
there is no credit this consumer waits a moment at a time instead, so the BRPOP starts again
right after the first job ends. A prefork worker keeps Celery's own loop: its event hub wakes on
the acknowledgement itself.

It also gives back what a dead worker held. Kombu's Redis transport restores unacknowledged
messages older than the visibility timeout (a killed worker's reserved and running jobs) from
a timer of the event hub a prefork worker runs, and otherwise only when a poll comes back with
no event at all. An idle worker without that hub never gets such a poll: its BRPOP answers
every second with nothing, which is an event. A fleet of gevent workers would keep a killed
worker's jobs unacknowledged for as long as it stayed quiet, so this consumer runs the same
restore on the same interval (the transport's ``unacked_restore_interval``).

And it lets kombu's two writes a job share the process's round trips. Kombu records each
message it hands over as unacknowledged (one ``MULTI`` as it arrives) and removes the record at
the acknowledgement (another): on its own connection, that is two round trips a job beside the
job's own. Routed through the process's group commit (``publishing.adapters.redis.batching``),
they go with whatever pipelines the process's other jobs send at that moment, each still one
``MULTI``/``EXEC`` of its own, with the same replies and errors as before (``SharedRoundTripQoS``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from celery.worker import loops
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.transport import redis as redis_transport
from kombu.transport import virtual
from kombu.utils.json import dumps
from redis.client import Pipeline

from publishing.adapters.composition import services_for
from publishing.adapters.redis.batching import PipelineBatcher
from workers.celery_app import settings_of

# How long a consumer with no credit waits before it looks again: a slot freed meanwhile waits
# no longer than this for its next job.
NO_CREDIT_WAIT_S = 0.02
# Kombu's own default for the hub's restore timer, when the transport options set none.
RESTORE_INTERVAL_S = 10.0

log = logging.getLogger(__name__)


class _Prompt:
    """The broker connection, whose wait for events is short while the channel has no credit."""

    def __init__(self, connection: Any, consumer: Any) -> None:
        self._connection = connection
        self._consumer = consumer
        self._next_restore = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def drain_events(self, timeout: float | None = None, **kwargs: Any) -> Any:
        self._maybe_restore()
        if not self._consumer.channel.qos.can_consume():
            timeout = NO_CREDIT_WAIT_S if timeout is None else min(timeout, NO_CREDIT_WAIT_S)
        return self._connection.drain_events(timeout=timeout, **kwargs)

    def _maybe_restore(self) -> None:
        """Every restore interval, put the messages a dead worker left unacknowledged past the
        visibility timeout back on their queues (kombu's ``restore_visible``)."""
        now = time.monotonic()
        if now < self._next_restore:
            return
        channel = self._consumer.channel
        self._next_restore = now + float(
            getattr(channel, "unacked_restore_interval", None) or RESTORE_INTERVAL_S
        )
        cycle = getattr(self._connection.transport, "cycle", None)
        restore = getattr(cycle, "maybe_restore_messages", None)
        if restore is None:  # not a Redis transport
            return
        try:
            restore()
        except Exception as exc:
            # Redis away: the next interval tries again; the loop's own reads report it.
            log.warning("restoring unacknowledged messages failed (%s)", type(exc).__name__)


class SharedRoundTripQoS(redis_transport.QoS):
    """Kombu's Redis QoS, its unacknowledged record and its acknowledgement sent through the
    process's group commit rather than on a round trip each. Every other operation (restoring,
    rejecting, the restore sweep) is kombu's own."""

    batcher: PipelineBatcher

    def append(self, message: Any, delivery_tag: str) -> None:
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        arrived = time.time()

        def build(pipe: Pipeline) -> None:
            pipe.execute_command("MULTI")
            pipe.zadd(self.unacked_index_key, {delivery_tag: arrived})
            pipe.hset(self.unacked_key, delivery_tag, record)
            pipe.execute_command("EXEC")

        self.batcher.run(build, ())
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        def build(pipe: Pipeline) -> None:
            pipe.execute_command("MULTI")
            pipe.zrem(self.unacked_index_key, delivery_tag)
            pipe.hdel(self.unacked_key, delivery_tag)
            pipe.execute_command("EXEC")

        self.batcher.run(build, ())
        virtual.QoS.ack(self, delivery_tag)


def _server(kwargs: dict[str, Any]) -> tuple[Any, ...]:
    return (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), int(kwargs.get("db") or 0))


def share_round_trips(app: Any, channel: Any) -> bool:
    """Route the channel's unacknowledged records and acknowledgements through the group
    commit of this process's Redis client, when there is one (an I/O pool) and it talks to the
    same server and database as the broker: a plain Redis channel (not Sentinel's, whose master
    may move apart from the client's during a failover) with no key prefix. Returns whether it
    did."""
    if type(channel) is not redis_transport.Channel or channel.global_keyprefix:
        return False
    qos = channel.qos
    if type(qos) is SharedRoundTripQoS:
        return True
    if type(qos) is not redis_transport.QoS:
        return False
    client = services_for(settings_of(app), app).redis
    batcher: PipelineBatcher | None = getattr(client, "batcher", None)
    if batcher is None or _server(client.connection_pool.connection_kwargs) != _server(
        channel.pool.connection_kwargs
    ):
        return False
    # The channel's own QoS object holds its prefetch and delivered state: keep it, and give
    # it the two routed writes.
    qos.__class__ = SharedRoundTripQoS
    cast(SharedRoundTripQoS, qos).batcher = batcher
    return True


def prompt_synloop(obj: Any, connection: Any, consumer: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        share_round_trips(obj.app, consumer.channel)
    except Exception as exc:
        # Sharing is a saving, never a condition of consuming: kombu's own writes work alone.
        log.warning("broker writes not shared with the jobs' round trips (%s)", type(exc).__name__)
    return loops.synloop(obj, _Prompt(connection, consumer), consumer, *args, **kwargs)


class Consumer(CeleryConsumer):
    def __init__(self, *args: Any, hub: Any = None, **kwargs: Any) -> None:
        if hub is None:
            self.loop = prompt_synloop
        super().__init__(*args, hub=hub, **kwargs)
