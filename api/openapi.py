"""The OpenAPI 3.1 document of this API, written by hand next to the routes it describes and
served at ``GET /api/v2/openapi.json``; a schemathesis test holds the routes to it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.params import DURATION
from publishing.classification import ErrorType
from publishing.dlq import MAX_PAGE, ReplayResult
from publishing.priority import Priority
from publishing.replay import RunState
from publishing.tracking import JobState

bp = Blueprint("openapi", __name__)

API_PREFIX = "/api/v2/publishing"
JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null (which the API reads as absent)."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    result = {**schema, "type": [schema["type"], "null"]}
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    return result


def lenient(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or an empty or false value (null, false, 0, "", [], {}), which the alert
    parser reads as absent."""
    return {"anyOf": [schema, {"enum": [None, False, 0, "", [], {}]}]}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


def enum(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values}


STRING = {"type": "string"}
INTEGER = {"type": "integer", "minimum": 0}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
DATE_TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
PRIORITY = enum([p.value for p in Priority])
ERROR_TYPE = enum([e.value for e in ErrorType])
JOB_STATE = enum([s.value for s in JobState])
BREAKER_STATE = enum(["closed", "open", "half_open"])

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": {**STRING, "description": "A stable code such as invalid_alert or already_replayed."},
            "message": {**STRING, "description": "What went wrong, for a person."},
            "details": {
                "type": "object",
                "description": "Data about the error: problems (invalid alerts), parameter, dependency, ...",
            },
        },
        ["error", "message", "details"],
    ),
    "Problem": obj({"field": STRING, "message": STRING}, ["field", "message"]),
    "AlertmanagerAlert": obj(
        {
            "status": enum(["firing", "resolved"]),
            "labels": obj(
                {"alertname": {**STRING, "minLength": 1}}, ["alertname"], additionalProperties=STRING
            ),
            "annotations": nullable(STRING_MAP),
            "startsAt": DATE_TIME,
            "endsAt": nullable({**STRING, "description": "RFC 3339; 0001-01-01T00:00:00Z means not ended."}),
            "generatorURL": lenient(STRING),
            "fingerprint": nullable(
                {**STRING, "minLength": 1, "description": "Derived from the labels when absent."}
            ),
        },
        ["status", "labels", "startsAt"],
    ),
    "AlertmanagerWebhook": obj(
        {
            "version": {"enum": ["4", 4, None], "description": "Only version 4 is accepted."},
            "alerts": {
                "type": "array",
                "items": ref("AlertmanagerAlert"),
                "minItems": 1,
                "maxItems": 1000,
                "description": "At most PUBLISHING_MAX_ALERTS_PER_REQUEST (default 1000); more is a 413.",
            },
            **{
                name: {"description": "Sent by Alertmanager; accepted as is and not used."}
                for name in (
                    "receiver",
                    "status",
                    "groupLabels",
                    "commonLabels",
                    "commonAnnotations",
                    "externalURL",
                    "groupKey",
                    "truncatedAlerts",
                )
            },
        },
        ["alerts"],
    ),
    "Classification": obj(
        {
            "severity": enum(["critical", "warning", "info", "noise"]),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": lenient(STRING),
            "recommendations": lenient({"type": "array", "items": STRING}),
        },
        ["severity"],
    ),
    "EnrichedAlert": obj(
        {
            "alert": obj(
                {
                    "fingerprint": nullable({**STRING, "minLength": 1}),
                    "alert_name": {
                        "description": "Used (a non-empty string) when labels.alertname is absent; else ignored."
                    },
                    "status": enum(["firing", "resolved"]),
                    "labels": nullable(STRING_MAP),
                    "annotations": nullable(STRING_MAP),
                    "starts_at": DATE_TIME,
                    "ends_at": nullable(DATE_TIME),
                    "generator_url": lenient(STRING),
                },
                ["status", "starts_at"],
                description="labels.alertname or alert_name is required.",
            ),
            "classification": nullable(ref("Classification")),
            "enrichment_metadata": lenient({"type": "object"}),
        },
        ["alert"],
    ),
    "SubmitRequest": {
        "description": (
            "One enriched alert, {alerts: [...]}, or a list of them. `targets` (objects only) "
            "names the targets to use instead of routing by their filters."
        ),
        "anyOf": [
            {
                "allOf": [
                    ref("EnrichedAlert"),
                    obj({"targets": {"type": "array", "items": {**STRING, "minLength": 1}, "minItems": 1}}),
                ]
            },
            obj(
                {
                    "alerts": {
                        "type": "array",
                        "items": ref("EnrichedAlert"),
                        "minItems": 1,
                        "maxItems": 1000,
                    },
                    "targets": {"type": "array", "items": {**STRING, "minLength": 1}, "minItems": 1},
                },
                ["alerts"],
            ),
            {"type": "array", "items": ref("EnrichedAlert"), "minItems": 1, "maxItems": 1000},
        ],
    },
    "SubmittedJob": obj(
        {"id": STRING, "fingerprint": STRING, "target": STRING, "priority": PRIORITY, "duplicate": BOOLEAN},
        ["id", "fingerprint", "target", "priority", "duplicate"],
    ),
    "SubmissionResult": obj(
        {
            "jobs": {"type": "array", "items": ref("SubmittedJob")},
            "unrouted": {
                "type": "array",
                "items": STRING,
                "description": "Fingerprints of alerts that no target's filter selected.",
            },
        },
        ["jobs", "unrouted"],
    ),
    "Job": obj(
        {
            "id": STRING,
            "fingerprint": STRING,
            "alert_name": STRING,
            "target": STRING,
            "priority": PRIORITY,
            "state": JOB_STATE,
            "retry_count": INTEGER,
            "error_type": nullable(STRING),
            "last_error": nullable(STRING),
            "submitted_at": nullable({**NUMBER, "description": "Unix time, seconds."}),
            "started_at": nullable(NUMBER),
            "completed_at": nullable(NUMBER),
            "delivered_via": nullable(
                {**STRING, "description": "The fallback target that took the job, if any."}
            ),
        },
        ["id", "fingerprint", "alert_name", "target", "priority", "state", "retry_count"],
    ),
    "JobList": obj(
        {"jobs": {"type": "array", "items": ref("Job")}, "total": INTEGER},
        ["jobs", "total"],
    ),
    "DeadLetter": obj(
        {
            "id": STRING,
            "job_id": STRING,
            "fingerprint": STRING,
            "target_name": STRING,
            "target_type": STRING,
            "enriched_alert": {"type": "object"},
            "target_config": {"type": "object", "description": "The target, secrets shown as ***."},
            "error_message": STRING,
            "error_type": ERROR_TYPE,
            "retry_count": INTEGER,
            "last_retry_at": nullable(DATE_TIME),
            "priority": PRIORITY,
            "failed_at": DATE_TIME,
            "created_at": nullable(DATE_TIME),
            "updated_at": nullable(DATE_TIME),
            "replayed": BOOLEAN,
            "replayed_at": nullable(DATE_TIME),
            "replay_result": nullable(enum([r.value for r in ReplayResult])),
            "replay_job_id": nullable(STRING),
            "replayed_from": nullable(STRING),
            "delivered_via": nullable({**STRING, "description": "The fallback target last tried, if any."}),
        },
        ["id", "job_id", "fingerprint", "target_name", "error_type", "priority", "failed_at", "replayed"],
    ),
    "DeadLetterPage": obj(
        {
            "entries": {"type": "array", "items": ref("DeadLetter")},
            "total": INTEGER,
            "limit": INTEGER,
            "offset": INTEGER,
        },
        ["entries", "total", "limit", "offset"],
    ),
    "DLQStats": obj(
        {
            "total": INTEGER,
            "by_error_type": {"type": "object", "additionalProperties": INTEGER},
            "by_target": {"type": "object", "additionalProperties": INTEGER},
            "by_priority": {"type": "object", "additionalProperties": INTEGER},
            "oldest": nullable(DATE_TIME),
            "newest": nullable(DATE_TIME),
            "replayed": INTEGER,
        },
        ["total", "by_error_type", "by_target", "by_priority", "oldest", "newest", "replayed"],
    ),
    "ReplayAccepted": obj(
        {"job_id": STRING, "dead_letter_id": STRING, "target": STRING, "priority": PRIORITY},
        ["job_id", "dead_letter_id", "target", "priority"],
    ),
    "BulkReplayRequest": obj(
        {
            "target": nullable({**STRING, "minLength": 1}),
            "error_type": nullable(ERROR_TYPE),
            "priority": nullable(PRIORITY),
            "failed_after": nullable(DATE_TIME),
            "failed_before": nullable(DATE_TIME),
            "dry_run": {**BOOLEAN, "default": False},
        },
        additionalProperties=False,
        description="Filters select unreplayed rows that failed before the run was created.",
    ),
    "ReplayRun": obj(
        {
            "run_id": STRING,
            "state": enum([s.value for s in RunState]),
            "dry_run": BOOLEAN,
            "total": {**INTEGER, "description": "Rows the run covers."},
            "done": {**INTEGER, "description": "Rows replayed."},
            "failed": {**INTEGER, "description": "Rows that could not be replayed (left unreplayed)."},
            "skipped": {**INTEGER, "description": "Rows replayed or purged by someone else meanwhile."},
            "filters": {"type": "object"},
            "started_at": nullable(DATE_TIME),
            "finished_at": nullable(DATE_TIME),
            "error": nullable(STRING),
            "ids": {
                "type": "array",
                "items": STRING,
                "description": "Dry run only: the rows that would be replayed (at most 1000).",
            },
            "ids_truncated": BOOLEAN,
        },
        ["run_id", "state", "dry_run", "total", "done", "failed", "skipped"],
    ),
    "PurgeResult": obj(
        {"deleted_count": INTEGER, "older_than": STRING, "cutoff": DATE_TIME, "replayed_only": BOOLEAN},
        ["deleted_count"],
    ),
    "BreakerStatus": obj(
        {
            "target": STRING,
            "state": BREAKER_STATE,
            "consecutive_failures": INTEGER,
            "probe_successes": INTEGER,
            "opened_at": nullable({**NUMBER, "description": "Unix time, seconds."}),
            "trips": INTEGER,
            "recoveries": INTEGER,
        },
        ["target", "state"],
    ),
    "BreakerList": obj({"breakers": {"type": "array", "items": ref("BreakerStatus")}}, ["breakers"]),
    "Target": obj(
        {
            "name": STRING,
            "type": enum(["pagerduty", "slack", "rootly", "webhook"]),
            "format": enum(["pagerduty", "slack", "rootly", "webhook", "alertmanager"]),
            "url": {**STRING, "description": "A Slack webhook URL is itself a secret and shown redacted."},
            "enabled": BOOLEAN,
            "headers": STRING_MAP,
            "filter": {"type": "object"},
            "timeout_s": nullable(NUMBER),
            "routing_key": enum(["***"]),
            "api_token": enum(["***"]),
            "bearer_token": enum(["***"]),
            "signing_secret": enum(["***"]),
            "basic_auth": obj({"username": STRING, "password": enum(["***"])}),
            "breaker": ref("BreakerStatus"),
        },
        ["name", "type", "format", "url", "enabled", "breaker"],
    ),
    "TargetList": obj({"targets": {"type": "array", "items": ref("Target")}}, ["targets"]),
    "TargetHealth": obj(
        {
            "success_rate": nullable(NUMBER),
            "attempts": {"type": "integer"},
            "successes": {"type": "integer"},
            "failures": {"type": "integer"},
            "deferrals": {"type": "integer"},
            "pauses": {"type": "integer"},
            "rate_limited": {"type": "integer"},
            "fallback_reroutes": {"type": "integer"},
            "last_success_at": nullable(NUMBER),
            "last_failure_at": nullable(NUMBER),
            "last_error": {**nullable(STRING), "description": "Redacted."},
            "breaker_history": {
                "type": "array",
                "items": obj({"event": enum(["tripped", "recovered"]), "at": NUMBER}, ["event", "at"]),
            },
        },
        ["success_rate", "attempts", "last_success_at", "last_failure_at", "last_error", "breaker_history"],
    ),
    "TargetDetail": {
        "allOf": [ref("Target"), obj({"health": ref("TargetHealth")}, ["health"])],
    },
    "TestAlertRequest": obj({"severity": {**enum(["critical", "warning", "info"]), "default": "warning"}}),
    "TestAlertAccepted": obj(
        {"job_id": STRING, "target": STRING, "priority": PRIORITY, "fingerprint": STRING},
        ["job_id", "target", "priority", "fingerprint"],
    ),
    "QueueStatus": obj(
        {
            "depth": obj({q.value: INTEGER for q in Priority}, [q.value for q in Priority]),
            "total": INTEGER,
        },
        ["depth", "total"],
    ),
    "QueueStats": obj(
        {
            "queues": obj(
                {
                    q.value: obj(
                        {"depth": INTEGER, "oldest_age_s": nullable({**NUMBER, "minimum": 0})},
                        ["depth", "oldest_age_s"],
                    )
                    for q in Priority
                },
                [q.value for q in Priority],
            ),
            "total": INTEGER,
            "workers": obj(
                {"count": nullable(INTEGER), "names": nullable({"type": "array", "items": STRING})},
                ["count", "names"],
                description="Workers that answered a ping; null when they could not be asked.",
            ),
            "jobs": obj(
                {
                    "submitted": INTEGER,
                    "succeeded": INTEGER,
                    "failed": INTEGER,
                    "dlq": INTEGER,
                    "by_state": {"type": "object", "additionalProperties": INTEGER},
                },
                ["submitted", "succeeded", "failed", "dlq", "by_state"],
            ),
            "breakers": {"type": "object", "additionalProperties": BREAKER_STATE},
        },
        ["queues", "total", "workers", "jobs", "breakers"],
    ),
    "Health": obj({"status": enum(["ok"])}, ["status"]),
    "Ready": obj({"redis": enum(["ok"]), "database": enum(["ok"])}, ["redis", "database"]),
}

_ERROR_RESPONSES = {
    "400": "Malformed JSON or an invalid query parameter (details.parameter names it).",
    "401": "No bearer token, or not a valid one.",
    "403": "The token's role is too low, or (no tokens configured) the caller is not on loopback.",
    "404": "No such resource.",
    "409": "Conflict: already replayed, not replayable now, or the target is disabled.",
    "413": "The body is over PUBLISHING_MAX_BODY_BYTES, or holds too many alerts.",
    "422": "The body is JSON but not valid; details.problems lists each field and what is wrong.",
    "503": "Redis or the database is down; details.dependency says which.",
}
RESPONSES = {
    code: {"description": text, "content": {JSON: {"schema": ref("Error")}}}
    for code, text in _ERROR_RESPONSES.items()
}


def _ok(status: str, schema: str, description: str) -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": ref(schema)}}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def _path(name: str, description: str, schema: dict[str, Any] = STRING) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _body(schema: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": ref(schema)}}}


def _op(
    summary: str,
    role: str | None,
    responses: dict[str, Any],
    *,
    tag: str,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if role is None:
        operation["security"] = []
    else:
        operation["description"] = f"Needs the {role} role."
        operation["responses"] = {**responses, **_errors("401", "403")}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    return operation


LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}
DLQ_FILTERS = [
    _query("target", {**STRING, "minLength": 1}),
    _query("error_type", ERROR_TYPE),
    _query("priority", PRIORITY),
    _query("replayed", BOOLEAN),
    _query("failed_after", DATE_TIME, "Rows that failed at or after this time."),
    _query("failed_before", DATE_TIME, "Rows that failed before this time."),
]


def _paths() -> dict[str, Any]:
    p = API_PREFIX
    return {
        "/webhook": {
            "post": _op(
                "Receive an Alertmanager (v4) webhook: one job per alert and matching target",
                "operator",
                {**_ok("202", "SubmissionResult", "Accepted"), **_errors("400", "413", "422", "503")},
                tag="alerts",
                body=_body("AlertmanagerWebhook"),
            )
        },
        f"{p}/submit": {
            "post": _op(
                "Submit enriched alerts, optionally to named targets",
                "operator",
                {**_ok("202", "SubmissionResult", "Accepted"), **_errors("400", "404", "413", "422", "503")},
                tag="alerts",
                body=_body("SubmitRequest"),
            )
        },
        f"{p}/queue/status": {
            "get": _op(
                "Queue depth by priority",
                "reader",
                {**_ok("200", "QueueStatus", "Depths"), **_errors("503")},
                tag="queue",
            )
        },
        f"{p}/queue/stats": {
            "get": _op(
                "Depth and oldest pending age per queue, workers, job counts and breaker states",
                "reader",
                {**_ok("200", "QueueStats", "Statistics"), **_errors("503")},
                tag="queue",
            )
        },
        f"{p}/jobs": {
            "get": _op(
                "Tracked jobs, newest first",
                "reader",
                {**_ok("200", "JobList", "Jobs"), **_errors("400", "503")},
                tag="jobs",
                parameters=[
                    _query("state", JOB_STATE),
                    _query("priority", PRIORITY),
                    _query("target", STRING),
                    _query("limit", LIMIT),
                ],
            )
        },
        f"{p}/jobs/{{id}}": {
            "get": _op(
                "One tracked job",
                "reader",
                {**_ok("200", "Job", "The job"), **_errors("404", "503")},
                tag="jobs",
                parameters=[_path("id", "The job id.")],
            )
        },
        f"{p}/dlq": {
            "get": _op(
                "Dead letters, newest first",
                "reader",
                {**_ok("200", "DeadLetterPage", "A page of rows"), **_errors("400", "503")},
                tag="dlq",
                parameters=[
                    *DLQ_FILTERS,
                    _query("limit", LIMIT),
                    _query("offset", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0}),
                ],
            )
        },
        f"{p}/dlq/stats": {
            "get": _op(
                "DLQ statistics",
                "reader",
                {**_ok("200", "DLQStats", "Statistics"), **_errors("503")},
                tag="dlq",
            )
        },
        f"{p}/dlq/{{id}}": {
            "get": _op(
                "One dead letter",
                "reader",
                {**_ok("200", "DeadLetter", "The row"), **_errors("404", "503")},
                tag="dlq",
                parameters=[_path("id", "The row id; anything but a UUID names no row (404).", UUID)],
            )
        },
        f"{p}/dlq/{{id}}/replay": {
            "post": _op(
                "Replay one dead letter (once: a second replay is a 409)",
                "admin",
                {**_ok("202", "ReplayAccepted", "The replay job is queued"), **_errors("404", "409", "503")},
                tag="dlq",
                parameters=[_path("id", "The row id; anything but a UUID names no row (404).", UUID)],
            )
        },
        f"{p}/dlq/replay": {
            "post": _op(
                "Replay every unreplayed row matching the filters, in the background (or list them: dry_run)",
                "admin",
                {
                    "202": {
                        "description": "The run; GET the Location header for its progress.",
                        "headers": {"Location": {"schema": STRING}},
                        "content": {JSON: {"schema": ref("ReplayRun")}},
                    },
                    **_errors("400", "413", "422", "503"),
                },
                tag="dlq",
                body=_body("BulkReplayRequest", required=False),
            )
        },
        f"{p}/dlq/replay/{{run_id}}": {
            "get": _op(
                "Progress of a bulk replay run (kept 7 days)",
                "reader",
                {**_ok("200", "ReplayRun", "The run"), **_errors("404", "503")},
                tag="dlq",
                parameters=[_path("run_id", "The run id.")],
            )
        },
        f"{p}/dlq/purge": {
            "delete": _op(
                "Delete rows that failed longer ago than older_than",
                "admin",
                {**_ok("200", "PurgeResult", "What was deleted"), **_errors("400", "503")},
                tag="dlq",
                parameters=[
                    _query(
                        "older_than",
                        {**STRING, "pattern": DURATION.pattern, "default": "168h"},
                        "A duration such as 168h, 7d, 30m, 90s or 1h30m (units ms, s, m, h, d, w).",
                    ),
                    _query("replayed_only", {**BOOLEAN, "default": False}),
                ],
            )
        },
        f"{p}/targets": {
            "get": _op(
                "Targets with secrets redacted, each with its breaker",
                "reader",
                {**_ok("200", "TargetList", "Targets"), **_errors("503")},
                tag="targets",
            )
        },
        f"{p}/targets/{{name}}": {
            "get": _op(
                "One target, redacted, with its breaker and health: success rate, last success, last "
                "failure and its error, breaker history, pauses, rate limiting and fallback use",
                "reader",
                {**_ok("200", "TargetDetail", "The target"), **_errors("404", "503")},
                tag="targets",
                parameters=[_path("name", "The target name.")],
            )
        },
        f"{p}/targets/{{name}}/test": {
            "post": _op(
                "Send a synthetic test alert to a target through the whole pipeline",
                "admin",
                {
                    **_ok("202", "TestAlertAccepted", "The test job is queued"),
                    **_errors("400", "404", "409", "413", "422", "503"),
                },
                tag="targets",
                parameters=[_path("name", "The target name.")],
                body=_body("TestAlertRequest", required=False),
            )
        },
        f"{p}/breakers": {
            "get": _op(
                "Every target's circuit breaker",
                "reader",
                {**_ok("200", "BreakerList", "Breakers"), **_errors("503")},
                tag="breakers",
            )
        },
        f"{p}/breakers/{{target}}/reset": {
            "post": _op(
                "Close a target's breaker",
                "admin",
                {**_ok("200", "BreakerStatus", "The breaker after the reset"), **_errors("404", "503")},
                tag="breakers",
                parameters=[_path("target", "The target name.")],
            )
        },
        "/healthz": {"get": _op("Liveness", None, _ok("200", "Health", "The process serves"), tag="health")},
        "/readyz": {
            "get": _op(
                "Readiness: Redis answers PING and the database SELECT 1",
                None,
                {
                    **_ok("200", "Ready", "Ready"),
                    "503": {
                        "description": "Not ready; details says which dependency is down.",
                        "content": {JSON: {"schema": ref("Error")}},
                    },
                },
                tag="health",
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics: this process's counters and the fleet's queues, breakers and DLQ",
                None,
                {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                tag="health",
            )
        },
        "/api/v2/openapi.json": {
            "get": _op(
                "This document",
                None,
                {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}},
                tag="health",
            )
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Alert publishing API",
            "version": "2.0.0",
            "description": (
                "Alerts in, jobs out to PagerDuty, Slack, Rootly and webhooks, with a dead-letter "
                "queue. Every error is {error, message, details}. Bearer tokens carry a role: "
                "reader (GETs) < operator (+ webhook and submit) < admin (+ replay, purge, breaker "
                "reset, target test). With no tokens configured the API needs none but answers only "
                "loopback callers."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in ("alerts", "queue", "jobs", "dlq", "targets", "breakers", "health")],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {f"E{code}": response for code, response in RESPONSES.items()},
        },
    }


@bp.get("/api/v2/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(document())
