"""The reconciler thread of a worker (docs/design.md (Reconciler)): every
``PUBLISHING_RECONCILE_INTERVAL_S`` it runs one pass of ``RedisReconciler`` (one pass at a time
fleet-wide, whichever worker takes the lock), so a job whose message the broker lost is sent
again and a replay claim whose job never reached the broker is released. ``start`` also starts
the mover of parked jobs (``workers.mover``), which runs even with the reconciler off."""

from __future__ import annotations

import logging
import threading

from publishing.adapters.composition import services_for
from publishing.adapters.redis.reconcile import RedisReconciler
from publishing.settings import Settings
from workers import mover

log = logging.getLogger(__name__)


def reconciler_for(settings: Settings) -> RedisReconciler:
    services = services_for(settings)
    return RedisReconciler(
        services.redis,
        services.tracker,
        services.enqueuer,
        services.dead_letters,
        parking=services.parking,
        prefix=settings.key_prefix,
        grace_s=settings.reconcile_grace_s,
        # A pass that died lets the next one in soon; a long pass (a big backlog to read)
        # keeps it for its length.
        lock_s=max(60.0, 4 * settings.reconcile_interval_s),
    )


def _loop(settings: Settings, stop: threading.Event) -> None:
    reconciler = reconciler_for(settings)
    while not stop.wait(settings.reconcile_interval_s):
        try:
            report = reconciler.run_once()
        except Exception as exc:
            # Redis or the database away: the next pass tries again.
            log.warning("reconciler pass failed: %s: %s", type(exc).__name__, str(exc)[:200])
            continue
        if report is not None and (report.resent or report.released):
            log.info("reconciler: %d jobs sent again, %d replay claims released", len(report.resent),
                     len(report.released))  # fmt: skip


def start(settings: Settings) -> threading.Event | None:
    """Start the thread (a daemon: it dies with the worker), and the mover's of parked jobs,
    which runs even with the reconciler off; the event stops the reconciler."""
    mover.start(settings)
    if settings.reconcile_interval_s <= 0:
        return None
    stop = threading.Event()
    threading.Thread(target=_loop, args=(settings, stop), name="publishing-reconciler", daemon=True).start()
    return stop
