"""Queue depth and the pipeline's vital signs: ``GET .../queue/status`` and ``.../queue/stats``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from api.auth import Role, require
from api.services import services
from api.timefmt import iso
from publishing.tracking import JobState

log = logging.getLogger(__name__)

bp = Blueprint("queue", __name__, url_prefix="/api/v2/publishing/queue")

WORKERS = "publishing.queue.workers"
# A ping waits out its whole timeout (half a second) for the answers, far too long for a
# request: the answer is kept this long and asked again off the request path.
WORKERS_MAX_AGE_S = 10.0
# "None answered" (or the ping could not be sent) is what an operator watches change right
# after starting workers, so it is asked again sooner; the ping costs the request nothing.
NO_WORKERS_MAX_AGE_S = 2.0
# Before this process's first answer a request waits for it, at most this long (once).
FIRST_ANSWER_WAIT_S = 1.0


@dataclass(frozen=True)
class Sighting:
    names: list[str] | None  # None: the ping could not be sent
    at: float  # Unix seconds of the answer


class WorkerSightings:
    """The workers that answered the last ping, refreshed by a background thread started by
    the first request to find the answer stale (one ping in flight at a time): a request
    reads the last answer and never waits for a ping, except for the process's first."""

    def __init__(
        self,
        ping: Callable[[], list[str] | None],
        clock: Callable[[], float] = time.time,
        max_age_s: float = WORKERS_MAX_AGE_S,
        no_workers_max_age_s: float = NO_WORKERS_MAX_AGE_S,
    ) -> None:
        self._ping = ping
        self._clock = clock
        self._max_age_s = max_age_s
        self._no_workers_max_age_s = no_workers_max_age_s
        self._last: Sighting | None = None
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self._refreshing = False

    def latest(self, first_wait_s: float = FIRST_ANSWER_WAIT_S) -> Sighting | None:
        last = self._last
        if last is None or self._clock() - last.at >= self._max_age(last):
            self._refresh()
        if last is None and self._answered.wait(first_wait_s):
            last = self._last
        return last

    def _max_age(self, sighting: Sighting) -> float:
        return self._max_age_s if sighting.names else self._no_workers_max_age_s

    def _refresh(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self._run, name="worker-ping", daemon=True).start()

    def _run(self) -> None:
        try:
            try:
                names = self._ping()
            except Exception:  # workers seen is a nice-to-have: never fail a request for it
                log.warning("could not ping workers", exc_info=True)
                names = None
            self._last = Sighting(names, self._clock())
            self._answered.set()
        finally:
            with self._lock:
                self._refreshing = False


def _sightings() -> WorkerSightings:
    extensions = current_app.extensions
    if WORKERS not in extensions:
        # Two first requests may both build one: setdefault keeps the first stored.
        extensions.setdefault(WORKERS, WorkerSightings(services().queues.workers))
    return cast(WorkerSightings, extensions[WORKERS])


@bp.get("/status")
@require(Role.READER)
def status() -> ResponseReturnValue:
    depths = services().queues.depths()
    return jsonify({"depth": {d.queue: d.depth for d in depths}, "total": sum(d.depth for d in depths)})


@bp.get("/stats")
@require(Role.READER)
def stats() -> ResponseReturnValue:
    svc = services()
    depths = svc.queues.depths(with_age=True)
    seen = _sightings().latest()
    workers = seen.names if seen is not None else None
    by_state = svc.tracker.count_by_state()
    breakers: dict[str, Any] = {t.name: svc.breakers.status(t.name).state.label for t in svc.registry.all()}
    return jsonify(
        {
            "queues": {d.queue: {"depth": d.depth, "oldest_age_s": d.oldest_age_s} for d in depths},
            "total": sum(d.depth for d in depths),
            "workers": {"count": len(workers) if workers is not None else None, "names": workers},
            "workers_seen_at": iso(seen.at) if seen is not None else None,
            "jobs": {
                "submitted": sum(by_state.values()),
                "succeeded": by_state.get(JobState.SUCCEEDED.value, 0),
                "failed": by_state.get(JobState.FAILED.value, 0),
                "dlq": by_state.get(JobState.DLQ.value, 0),
                "by_state": by_state,
            },
            "breakers": breakers,
        }
    )
