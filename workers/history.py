"""The history flusher of a worker (docs/design.md (Delivery history)): every
``PUBLISHING_HISTORY_FLUSH_INTERVAL_S`` one pass, one at a time fleet-wide (a Redis lock),
moves the queued attempt records to the database in batches, prunes what is past retention,
and sends ``dlq_over`` when the DLQ crosses its threshold (docs/design.md (Events))."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from publishing.adapters import metrics
from publishing.adapters.composition import Services, services_for
from publishing.dlq import DLQFilter
from publishing.errors import DatabaseUnavailableError
from publishing.events import dlq_over
from publishing.history import MAX_BATCH
from publishing.settings import Settings

log = logging.getLogger(__name__)

# A pass moves at most this many batches (10,000 records), prunes at most PRUNE_BATCHES, and
# leaves the rest to the next one, so it never holds the lock for long.
FLUSH_BATCHES = 20
PRUNE_BATCHES = 10
# The DLQ's size is a COUNT: asked this often (or every ten passes, if sooner), not every pass.
DLQ_CHECK_EVERY_S = 30.0


@dataclass
class FlushReport:
    flushed: int = 0
    pruned: int = 0


class HistoryFlusher:
    def __init__(self, services: Services, settings: Settings) -> None:
        self._services = services
        self._settings = settings
        self._lock_s = max(30.0, 10 * settings.history_flush_interval_s)
        self._dlq_checked = float("-inf")
        self._dlq_every_s = min(DLQ_CHECK_EVERY_S, 10 * settings.history_flush_interval_s)

    def run_once(self, now: float | None = None) -> FlushReport | None:
        """One pass; None when another worker's pass holds the lock. ``DatabaseUnavailableError``
        leaves every record queued for the next pass."""
        queue = self._services.history_queue
        token = queue.lock(self._lock_s)
        if token is None:
            return None
        try:
            now = time.time() if now is None else now
            report = FlushReport()
            for _ in range(FLUSH_BATCHES):
                records, read = queue.peek(MAX_BATCH)
                if read == 0:
                    break
                report.flushed += self._services.history.append(records)
                queue.drop(read)
                if read < MAX_BATCH:
                    break
            cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=self._settings.history_retention_days)
            for _ in range(PRUNE_BATCHES):
                pruned = self._services.history.prune(cutoff, MAX_BATCH)
                report.pruned += pruned
                if pruned < MAX_BATCH:
                    break
            metrics.HISTORY_FLUSHED.inc(report.flushed)
            self._check_dlq(now)
            return report
        finally:
            queue.unlock(token)

    def _check_dlq(self, now: float) -> None:
        threshold = self._services.events.dlq_threshold()
        if threshold is None or now - self._dlq_checked < self._dlq_every_s:
            return
        self._dlq_checked = now
        _, size = self._services.dead_letters.read(DLQFilter(replayed=False), limit=1)
        if self._services.event_marks.crossed("dlq", size > threshold):
            self._services.events.send(dlq_over(size, threshold, now))


def _loop(settings: Settings, stop: threading.Event) -> None:
    flusher = HistoryFlusher(services_for(settings), settings)
    failing = False
    while not stop.wait(settings.history_flush_interval_s):
        try:
            report = flusher.run_once()
        except Exception as exc:
            # The database or Redis away: the records wait in Redis for the next pass.
            level = logging.DEBUG if failing else logging.WARNING
            failing = isinstance(exc, DatabaseUnavailableError)
            log.log(level, "history flush failed: %s: %s", type(exc).__name__, str(exc)[:200])
            continue
        if failing:
            failing = False
            log.info("history flush works again")
        if report is not None and report.pruned:
            log.info("history: %d attempts past retention deleted", report.pruned)


def start(settings: Settings) -> threading.Event:
    """Start the thread (a daemon: it dies with the worker); the event stops it."""
    stop = threading.Event()
    threading.Thread(target=_loop, args=(settings, stop), name="publishing-history", daemon=True).start()
    return stop
