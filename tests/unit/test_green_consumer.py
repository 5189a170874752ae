"""The I/O-pool worker's consumer (workers/green_consumer.py): while every slot holds a job its
wait for broker events is short, so a slot that frees gets its next job at once instead of
after Celery's 2 s wait; with credit left it waits as Celery does (a BRPOP is in flight); and
idle or busy it gives back a dead worker's unacknowledged messages on the restore interval."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from celery import Celery
from celery.worker import loops

from publishing.settings import Settings
from workers import green_consumer
from workers.config import celery_config
from workers.green_consumer import NO_CREDIT_WAIT_S, Consumer, prompt_synloop


class FakeConnection:
    def __init__(self) -> None:
        self.waits: list[float | None] = []
        self.transport = "redis"

    def drain_events(self, timeout: float | None = None) -> None:
        self.waits.append(timeout)


def consumer_with_credit(credit: list[bool]) -> Any:
    qos = SimpleNamespace(can_consume=lambda: credit[0])
    return SimpleNamespace(channel=SimpleNamespace(qos=qos))


def test_without_credit_the_consumer_looks_again_within_a_moment(monkeypatch: Any) -> None:
    credit = [True]
    connection = FakeConnection()
    seen: list[Any] = []

    def synloop(obj: Any, conn: Any, consumer: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(conn)
        conn.drain_events(timeout=2.0)  # Celery's wait, credit left: a BRPOP is in flight
        credit[0] = False
        conn.drain_events(timeout=2.0)  # every slot busy: BRPOP paused
        conn.drain_events()
        credit[0] = True
        conn.drain_events(timeout=2.0)

    monkeypatch.setattr(loops, "synloop", synloop)
    prompt_synloop(object(), connection, consumer_with_credit(credit))
    assert connection.waits == [2.0, NO_CREDIT_WAIT_S, NO_CREDIT_WAIT_S, 2.0]
    # Everything else is the connection's own.
    assert seen[0].transport == "redis"


def test_every_worker_runs_this_consumer_and_only_a_worker_without_an_event_hub_its_loop() -> None:
    assert celery_config(Settings())["worker_consumer"] == "workers.green_consumer:Consumer"
    app = Celery(set_as_current=False)
    controller = SimpleNamespace(use_eventloop=False)
    green = Consumer(
        lambda *a: None, app=app, hub=None, pool=SimpleNamespace(is_green=True), controller=controller
    )
    assert green.loop is green_consumer.prompt_synloop
    hub = object()
    prefork = Consumer(
        lambda *a: None, app=app, hub=hub, pool=SimpleNamespace(is_green=False), controller=controller
    )
    assert prefork.loop is loops.asynloop


def test_an_idle_consumer_still_gives_back_a_dead_workers_unacknowledged_messages_every_interval(
    monkeypatch: Any,
) -> None:
    restores: list[float] = []
    clock = [100.0]
    monkeypatch.setattr(green_consumer.time, "monotonic", lambda: clock[0])
    connection = FakeConnection()
    connection.transport = SimpleNamespace(  # type: ignore[assignment]
        cycle=SimpleNamespace(maybe_restore_messages=lambda: restores.append(clock[0]))
    )
    consumer = consumer_with_credit([True])
    consumer.channel.unacked_restore_interval = 5

    def synloop(obj: Any, conn: Any, consumer: Any, *args: Any, **kwargs: Any) -> None:
        # Idle: every wait ends with BRPOP's empty answer, which kombu's own restore ignores.
        for _ in range(4):
            conn.drain_events(timeout=2.0)
            clock[0] += 2.0

    monkeypatch.setattr(loops, "synloop", synloop)
    prompt_synloop(object(), connection, consumer)
    # At the first wait, then once the interval has passed, not at every wait.
    assert restores == [100.0, 106.0]
