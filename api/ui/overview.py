"""The overview page: queue depth and oldest age per priority, workers seen, jobs by state,
the DLQ's size, and every target's breaker and health at a glance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, render_template
from flask.typing import ResponseReturnValue

from api.services import QueueInspector, services
from api.ui.blueprint import bp

WORKERS = "publishing.ui.workers"


@dataclass(frozen=True)
class Sighting:
    names: list[str] | None  # None: the ping could not be sent
    at: float


class WorkerSightings:
    """The workers that answered the last ping, kept for ``max_age_s``. A ping waits out its
    whole timeout (half a second), far too long for a page, so the overview shows the last
    answer and fetches a fresh one apart (``/ui/overview/workers``) once it is older."""

    def __init__(self, max_age_s: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age_s = max_age_s
        self._clock = clock
        self._last: Sighting | None = None
        self._lock = threading.Lock()

    def recent(self) -> Sighting | None:
        last = self._last
        return last if last is not None and self._clock() - last.at < self._max_age_s else None

    def ping(self, queues: QueueInspector) -> Sighting:
        with self._lock:  # one ping at a time per process, however many pages ask
            recent = self.recent()
            if recent is None:
                recent = self._last = Sighting(queues.workers(), self._clock())
            return recent


def _sightings() -> WorkerSightings:
    sightings: WorkerSightings = current_app.extensions[WORKERS]
    return sightings


@bp.get("/")
def overview() -> ResponseReturnValue:
    svc = services()
    targets = [(t, svc.breakers.status(t.name), svc.health.get(t.name)) for t in svc.registry.all()]
    return render_template(
        "overview.html",
        depths=svc.queues.depths(with_age=True),
        by_state=svc.tracker.count_by_state(),
        dlq=svc.dead_letters.stats(),
        targets=targets,
        workers=_sightings().recent(),
    )


@bp.get("/overview/workers")
def workers() -> ResponseReturnValue:
    return render_template("workers.html", workers=_sightings().ping(services().queues))
