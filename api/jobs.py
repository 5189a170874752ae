"""Tracked jobs (docs/design.md (Job states)): ``GET .../jobs`` filtered, newest first, and ``GET .../jobs/<id>``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from api.auth import Role, require
from api.errors import NotFoundKind, found
from api.params import enum_value, int_arg
from api.schemas_query import JobsQuery
from api.services import services
from api.timefmt import job_json
from publishing.priority import Priority
from publishing.tracking import JobQuery, JobState

bp = Blueprint("jobs", __name__, url_prefix="/api/v2/publishing/jobs")


@bp.get("")
@require(Role.READER, query=JobsQuery)
def list_jobs() -> ResponseReturnValue:
    query = JobQuery(
        state=enum_value(JobState, "state", request.args.get("state")),
        priority=enum_value(Priority, "priority", request.args.get("priority")),
        target=request.args.get("target") or None,
        limit=int_arg("limit", *JobsQuery.int_bounds("limit")),
    )
    jobs, total = services().tracker.list(query)
    return jsonify({"jobs": [job_json(j.to_dict()) for j in jobs], "total": total})


@bp.get("/<job_id>")
@require(Role.READER)
def get_job(job_id: str) -> ResponseReturnValue:
    snapshot = found(services().tracker.get(job_id), NotFoundKind.JOB, job_id, f"no tracked job {job_id!r}")
    return jsonify(job_json(snapshot.to_dict()))
