"""The dead-letter queue over HTTP (docs/design.md (Dead-letter queue); docs/design.md (API and access)): list, get, stats, replay one, replay many in
the background with progress, and purge.

``DELETE .../dlq/purge`` defaults ``older_than`` to 168h (a week), the value docs/design.md (API and access) shows, so
a bare purge never removes last week's rows; under an hour it needs ``force=true``, and
``dry_run=true`` counts what would go without deleting it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, request, url_for
from flask.sansio.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.routing import BaseConverter

from api.auth import Role, require
from api.errors import NotFoundKind, found
from api.params import (
    bool_value,
    dlq_filter,
    int_arg,
    invalid_field,
    invalid_parameter,
    json_body,
    parse_duration,
)
from api.schemas import BulkReplayRequest
from api.schemas_query import MIN_PURGE_AGE_S, DLQListQuery, PurgeQuery
from api.services import services
from publishing.dlq import DLQFilter

bp = Blueprint("dlq", __name__, url_prefix="/api/v2/publishing/dlq")

# The paths beside the rows, which no row id may shadow.
_OWN_PATHS = ("replay", "purge", "stats")


class RowIdConverter(BaseConverter):
    """A row id is any segment but the DLQ's own paths: the repository answers one that is not a
    UUID as no row (a 404 naming it), not the router as no endpoint, and ``GET .../dlq/replay``
    stays a 405 instead of reading as a row id."""

    regex = rf"(?!(?:{'|'.join(_OWN_PATHS)})(?:/|$))[^/]+"
    # Rows have UUIDs; the route takes any other segment only to answer it with a 404.
    openapi_schema = {"type": "string", "format": "uuid"}


@bp.record_once
def _register_row_id(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("row_id", RowIdConverter)


_BULK_FIELDS = set(BulkReplayRequest.model_fields)


@bp.get("")
@require(Role.READER, query=DLQListQuery)
def list_entries() -> ResponseReturnValue:
    query = dlq_filter(request.args)
    limit = int_arg("limit", *DLQListQuery.int_bounds("limit"))
    offset = int_arg("offset", *DLQListQuery.int_bounds("offset"))
    entries, total = services().dead_letters.read(query, limit=limit, offset=offset)
    return jsonify(
        {"entries": [e.to_dict() for e in entries], "total": total, "limit": limit, "offset": offset}
    )


@bp.get("/stats")
@require(Role.READER)
def stats() -> ResponseReturnValue:
    return jsonify(services().dead_letters.stats().to_dict())


@bp.get("/<row_id:letter_id>")
@require(Role.READER)
def get_entry(letter_id: str) -> ResponseReturnValue:
    return jsonify(services().dead_letters.get(letter_id).to_dict())


@bp.post("/<row_id:letter_id>/replay")
@require(Role.ADMIN)
def replay_one(letter_id: str) -> ResponseReturnValue:
    job = services().replayer.replay_one(letter_id)
    body = {
        "job_id": job.job_id,
        "dead_letter_id": job.replayed_from,
        "target": job.target,
        "priority": job.priority.value,
    }
    return jsonify(body), 202


@bp.post("/replay")
@require(Role.ADMIN)
def replay_many() -> ResponseReturnValue:
    body = json_body(default={})
    if not isinstance(body, dict):
        raise invalid_field("$", body, "must be an object of filters and dry_run")
    unknown = sorted(set(body) - _BULK_FIELDS)
    if unknown:
        raise invalid_field(
            unknown[0], body[unknown[0]], f"is not a replay filter; allowed: {sorted(_BULK_FIELDS)}"
        )
    query = dlq_filter(body, invalid_field)
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise invalid_field("dry_run", dry_run, "must be true or false")
    svc = services()
    run = svc.replayer.new_run(query, dry_run=dry_run)
    svc.replay_runs.save(run)
    answer: dict[str, Any] = run.to_dict()
    if dry_run:
        ids = svc.replayer.preview(run)
        answer.update(ids=ids, ids_truncated=run.total > len(ids))
    else:
        svc.replay_runner.start(run)
    location = url_for("dlq.replay_progress", run_id=run.run_id)
    return jsonify(answer), 202, {"Location": location}


@bp.get("/replay/<run_id>")
@require(Role.READER)
def replay_progress(run_id: str) -> ResponseReturnValue:
    message = f"no replay run {run_id!r} (runs are kept 7 days)"
    run = found(services().replay_runs.get(run_id), NotFoundKind.REPLAY_RUN, run_id, message)
    return jsonify(run.to_dict())


@bp.delete("/purge")
@require(Role.ADMIN, query=PurgeQuery)
def purge() -> ResponseReturnValue:
    older_than = request.args.get("older_than", PurgeQuery.default("older_than"))
    try:
        age_s = parse_duration(older_than)
    except ValueError as exc:
        raise invalid_parameter("older_than", older_than, str(exc)) from None
    replayed_only = _switch("replayed_only")
    force = _switch("force")
    dry_run = _switch("dry_run")
    if age_s < MIN_PURGE_AGE_S and not (force or dry_run):
        raise invalid_parameter(
            "older_than",
            older_than,
            f"is under {MIN_PURGE_AGE_S // 3600}h, which would delete rows an operator may not have "
            "seen yet; add force=true to purge them anyway (or dry_run=true to count them)",
        )
    svc = services()
    now = datetime.fromtimestamp(svc.clock(), UTC)
    try:
        cutoff = now - timedelta(seconds=age_s)
    except OverflowError:
        # Older than the calendar goes: no row is, and nothing is deleted.
        cutoff = datetime.min.replace(tzinfo=UTC)
    answer: dict[str, Any] = {
        "deleted_count": 0,
        "older_than": older_than,
        "cutoff": cutoff.isoformat(),
        "replayed_only": replayed_only,
        "dry_run": dry_run,
    }
    if dry_run:
        query = DLQFilter(failed_before=cutoff, replayed=True if replayed_only else None)
        _, answer["would_delete"] = svc.dead_letters.read(query, limit=1)
    else:
        answer["deleted_count"] = svc.dead_letters.purge(cutoff, replayed_only=replayed_only)
    return jsonify(answer)


def _switch(name: str) -> bool:
    return bool_value(name, request.args.get(name)) or False
