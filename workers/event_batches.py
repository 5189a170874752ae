"""Task events sent in batches, by a gevent worker and a prefork one alike.

Celery buffers task events only for a worker with its event loop (prefork), and sends the
buffer at the loop's next turn: under load that is about every job (1.6 Redis PUBLISHes a
job, measured). On a gevent pool it buffers none: every ``task-started`` and
``task-succeeded`` is its own PUBLISH, about a fifth of the worker's CPU in a storm. This
consumer step sends them at most ``FLUSH_AFTER_S`` after the first of a batch, or at once when
``BATCH_LIMIT`` wait: one ``task.multi`` message, which Flower and every event receiver read
as the events it holds."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.worker.consumer.events import Events

log = logging.getLogger(__name__)

# How late an event may reach Flower, and how many wait at most: at a few hundred jobs a
# second (three events each) a batch is then some tens of events, one PUBLISH.
FLUSH_AFTER_S = 0.05
BATCH_LIMIT = 100


class _Flusher:
    """On the worker's event hub (prefork), or in a greenlet (gevent)."""

    def __init__(self, dispatcher: Any, hub: Any = None) -> None:
        self._dispatcher = dispatcher
        self._hub = hub
        self._pending = False

    def soon(self) -> None:
        """Called by the dispatcher for each buffered event: one flush for the events of the
        next ``FLUSH_AFTER_S``."""
        if self._pending:
            return
        self._pending = True
        if self._hub is not None:
            self._hub.call_later(FLUSH_AFTER_S, self.flush)
        else:
            import gevent

            gevent.spawn_later(FLUSH_AFTER_S, self.flush)

    def flush(self) -> None:
        self._pending = False
        try:
            self._dispatcher.flush(errors=False)
        except Exception as exc:  # the broker unreachable: events are a view, never a reason to stop
            log.warning("task events not sent (%s: %s)", type(exc).__name__, str(exc)[:200])


class BatchTaskEvents(bootsteps.StartStopStep):
    requires = (Events,)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self._flusher: _Flusher | None = None
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        self._flusher = None
        if dispatcher is None or (c.hub is None and not getattr(c.pool, "is_green", False)):
            return  # a thread pool sends each event
        self._flusher = _Flusher(dispatcher, c.hub)
        dispatcher.buffer_group = frozenset({"task"})
        dispatcher.buffer_limit = BATCH_LIMIT
        dispatcher.on_send_buffered = self._flusher.soon

    def stop(self, c: Any) -> None:
        # Before the Events step closes the dispatcher (steps stop in reverse order).
        if self._flusher is not None:
            self._flusher.flush()

    def shutdown(self, c: Any) -> None:
        self.stop(c)
