"""Task events in batches (workers/event_batches.py): a prefork worker (its event hub) and a
gevent worker buffer their task events and send them at most ``FLUSH_AFTER_S`` after the first
of a batch, one flush for all of them, and whatever is buffered when the worker stops; a
thread pool sends each event as Celery does."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from workers.event_batches import BATCH_LIMIT, FLUSH_AFTER_S, BatchTaskEvents


class FakeHub:
    def __init__(self) -> None:
        self.later: list[tuple[float, Any]] = []

    def call_later(self, delay: float, callback: Any, *args: Any) -> None:
        self.later.append((delay, callback))


class FakeDispatcher:
    def __init__(self) -> None:
        self.buffer_group: Any = frozenset()
        self.buffer_limit = 24
        self.on_send_buffered: Any = "celery's own"
        self.flushes = 0

    def flush(self, errors: bool = True) -> None:
        self.flushes += 1


def consumer(hub: Any, green: bool) -> Any:
    return SimpleNamespace(event_dispatcher=FakeDispatcher(), hub=hub, pool=SimpleNamespace(is_green=green))


def test_a_prefork_worker_sends_the_events_of_each_interval_in_one_flush() -> None:
    hub = FakeHub()
    c = consumer(hub, green=False)
    step = BatchTaskEvents(c)
    step.start(c)
    dispatcher = c.event_dispatcher
    assert dispatcher.buffer_group == frozenset({"task"}) and dispatcher.buffer_limit == BATCH_LIMIT
    for _ in range(30):  # thirty events buffered: one flush is due, after the interval
        dispatcher.on_send_buffered()
    assert [delay for delay, _ in hub.later] == [FLUSH_AFTER_S] and dispatcher.flushes == 0
    hub.later[0][1]()
    assert dispatcher.flushes == 1
    dispatcher.on_send_buffered()  # the next event opens the next batch
    assert len(hub.later) == 2
    step.stop(c)  # stopping sends what is buffered
    assert dispatcher.flushes == 2


def test_a_thread_pool_sends_each_event_as_celery_does() -> None:
    c = consumer(None, green=False)
    BatchTaskEvents(c).start(c)
    assert c.event_dispatcher.on_send_buffered == "celery's own"
    assert c.event_dispatcher.buffer_group == frozenset()
