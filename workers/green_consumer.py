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
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker import loops
from celery.worker.consumer import Consumer as CeleryConsumer

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


def prompt_synloop(obj: Any, connection: Any, consumer: Any, *args: Any, **kwargs: Any) -> Any:
    return loops.synloop(obj, _Prompt(connection, consumer), consumer, *args, **kwargs)


class Consumer(CeleryConsumer):
    def __init__(self, *args: Any, hub: Any = None, **kwargs: Any) -> None:
        if hub is None:
            self.loop = prompt_synloop
        super().__init__(*args, hub=hub, **kwargs)
