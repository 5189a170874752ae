"""Delivery history (docs/design.md (Delivery history)): attempts filtered, newest first; a
job's attempts; and resending an attempt's alert to the target it went to, as a new job."""

from __future__ import annotations

import threading
import uuid
from typing import cast

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from api.auth import Role, require
from api.errors import ApiError
from api.params import int_arg, string_value, time_value
from api.schemas_query import HistoryQuery as HistoryParams
from api.services import services
from publishing.adapters.history_sql import SqlHistoryRepository
from publishing.alert import EnrichedAlert
from publishing.errors import InvalidAlertError
from publishing.history import HistoryQuery, HistoryRepository
from publishing.testing import InMemoryHistoryRepository

bp = Blueprint("history", __name__, url_prefix="/api/v2/publishing")

# The repository in ``app.extensions``, built on first use beside the DLQ: over its engine
# when the DLQ is in SQL, in memory when the services are the in-memory fakes (api.testing).
EXTENSION = "publishing.history"
_lock = threading.Lock()


def repository() -> HistoryRepository:
    app = current_app
    found = app.extensions.get(EXTENSION)
    if found is None:
        with _lock:
            found = app.extensions.get(EXTENSION)
            if found is None:
                engine = getattr(services().dead_letters, "engine", None)
                found = SqlHistoryRepository(engine) if engine is not None else InMemoryHistoryRepository()
                app.extensions[EXTENSION] = found
    return cast(HistoryRepository, found)


@bp.get("/history")
@require(Role.READER, query=HistoryParams)
def list_attempts() -> ResponseReturnValue:
    args = request.args
    query = HistoryQuery(
        fingerprint=string_value("fingerprint", args.get("fingerprint")),
        alert_name=string_value("alertname", args.get("alertname")),
        target=string_value("target", args.get("target")),
        since=time_value("since", args.get("since")),
        until=time_value("until", args.get("until")),
    )
    limit = int_arg("limit", *HistoryParams.int_bounds("limit"))
    offset = int_arg("offset", *HistoryParams.int_bounds("offset"))
    attempts, total = repository().query(query, limit=limit, offset=offset)
    return jsonify({"attempts": [a.to_dict() for a in attempts], "total": total})


@bp.get("/jobs/<job_id>/attempts")
@require(Role.READER)
def job_attempts(job_id: str) -> ResponseReturnValue:
    attempts = repository().attempts_of(job_id)
    return jsonify({"job_id": job_id, "attempts": [a.to_dict() for a in attempts]})


@bp.post("/history/<uuid:attempt_id>/resend")
@require(Role.OPERATOR)
def resend(attempt_id: uuid.UUID) -> ResponseReturnValue:
    record = repository().get(str(attempt_id))
    svc = services()
    target = svc.registry.get(record.sent_to)
    if not target.enabled:
        raise ApiError(409, "target_disabled", f"target {target.name!r} is disabled", {"target": target.name})
    if record.alert is None:
        raise ApiError(409, "alert_missing", "the attempt's alert is no longer kept", {"id": record.id})
    try:
        enriched = EnrichedAlert.from_dict(record.alert)
    except InvalidAlertError as exc:
        raise ApiError(
            409, "alert_invalid", f"the stored alert is not valid: {exc}", {"id": record.id}
        ) from None
    job = svc.submitter.submit_job(enriched, target)
    return jsonify({"job_id": job.job_id, "target": target.name, "attempt_id": record.id}), 202
