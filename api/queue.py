"""Queue depth and the pipeline's vital signs: ``GET .../queue/status`` and ``.../queue/stats``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import Role, require
from api.services import services
from publishing.tracking import JobState

bp = Blueprint("queue", __name__, url_prefix="/api/v2/publishing/queue")


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
    workers = svc.queues.workers()
    by_state = svc.tracker.count_by_state()
    breakers: dict[str, Any] = {t.name: svc.breakers.status(t.name).state.label for t in svc.registry.all()}
    return jsonify(
        {
            "queues": {d.queue: {"depth": d.depth, "oldest_age_s": d.oldest_age_s} for d in depths},
            "total": sum(d.depth for d in depths),
            "workers": {"count": len(workers) if workers is not None else None, "names": workers},
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
