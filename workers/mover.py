"""Parked jobs (docs/design.md (Retries)): the task parks a job whose wait is long, and every
worker runs a mover thread that sends due parked jobs back to their queues. Every worker
moves: a claim is one atomic script, so movers share the due jobs without a lock, and the
jobs of a worker that dies are moved by the others once their lease ends."""

from __future__ import annotations

import logging
import threading
import time

import redis

from publishing.adapters.broker import CeleryEnqueuer, producer_app
from publishing.adapters.composition import Services, services_for
from publishing.parking import MOVE_BATCH, hold_for, move_due
from publishing.plan import Plan
from publishing.settings import Settings

log = logging.getLogger(__name__)

# How often a mover looks for due jobs: a parked job runs at most about this late. A look that
# finds nothing is one short script (two a second a worker).
INTERVAL_S = 0.5


def park(services: Services, p: Plan) -> bool:
    """Park the plan's next job; False when Redis refused, and a countdown message is to carry
    it instead. Called before the task returns, so the message is acknowledged only once the
    job is parked: a worker killed in between has its message delivered again, and the job
    runs twice under its id (and is parked once: its entry is replaced)."""
    assert p.retry is not None
    hold = None
    if p.hold_target is not None:
        delivery = services.delivery
        max_deferral_s = delivery.breaker_config.max_deferral_s
        hold = hold_for(p.retry, p.hold_target, p.countdown_s, time.time(), max_deferral_s, delivery.registry)
    try:
        services.parking.park(p.retry, p.countdown_s, hold)
    except redis.RedisError as exc:
        log.warning("job %s: not parked (%s); held as a countdown", p.retry.job_id, type(exc).__name__)
        return False
    return True


def _loop(settings: Settings, stop: threading.Event, interval_s: float) -> None:
    lot = services_for(settings).parking
    # Its own producer: sends from this thread never share a connection with another thread's.
    app = producer_app(settings)
    enqueuer = CeleryEnqueuer(app)
    failing = False
    try:
        while not stop.wait(interval_s):
            try:
                # A full batch means more may be due: claim again at once.
                while not stop.is_set():
                    moved = move_due(lot, enqueuer)
                    if moved.sent + moved.unreadable < MOVE_BATCH:
                        break
            except Exception as exc:
                # Redis away: the jobs stay parked (or claimed, until their lease ends).
                level = logging.DEBUG if failing else logging.WARNING
                failing = True
                log.log(level, "moving parked jobs failed: %s: %s", type(exc).__name__, str(exc)[:200])
                continue
            if failing:
                failing = False
                log.info("moving parked jobs works again")
    finally:
        app.close()


def start(settings: Settings, interval_s: float = INTERVAL_S) -> threading.Event:
    """Start the thread (a daemon: it dies with the worker); the event stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_loop, args=(settings, stop, interval_s), name="publishing-mover", daemon=True
    )
    thread.start()
    return stop
