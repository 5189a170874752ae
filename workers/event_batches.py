"""Task events of a gevent worker sent in batches, as a prefork worker's already are.

Celery buffers task events only for a worker with its event loop (prefork); on a gevent pool
every ``task-started`` and ``task-succeeded`` is its own Redis PUBLISH, about a fifth of the
worker's CPU in a storm. This consumer step buffers them too and sends them at most
``FLUSH_AFTER_S`` later, or at once when ``BATCH_LIMIT`` wait: one ``task.multi`` message,
which Flower and every event receiver read as the events it holds."""

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
    def __init__(self, dispatcher: Any) -> None:
        self._dispatcher = dispatcher
        self._pending = False

    def soon(self) -> None:
        """Called by the dispatcher for each buffered event: one flush for the events of the
        next ``FLUSH_AFTER_S``."""
        if not self._pending:
            import gevent

            self._pending = True
            gevent.spawn_later(FLUSH_AFTER_S, self.flush)

    def flush(self) -> None:
        self._pending = False
        try:
            self._dispatcher.flush(errors=False)
        except Exception as exc:  # the broker unreachable: events are a view, never a reason to stop
            log.warning("task events not sent (%s: %s)", type(exc).__name__, str(exc)[:200])


class BatchGreenTaskEvents(bootsteps.StartStopStep):
    requires = (Events,)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self._flusher: _Flusher | None = None
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        self._flusher = None
        if c.hub is not None or dispatcher is None or not getattr(c.pool, "is_green", False):
            return  # prefork buffers its own; a thread pool sends each event
        self._flusher = _Flusher(dispatcher)
        dispatcher.buffer_group = frozenset({"task"})
        dispatcher.buffer_limit = BATCH_LIMIT
        dispatcher.on_send_buffered = self._flusher.soon

    def stop(self, c: Any) -> None:
        # Before the Events step closes the dispatcher (steps stop in reverse order).
        if self._flusher is not None:
            self._flusher.flush()

    def shutdown(self, c: Any) -> None:
        self.stop(c)
