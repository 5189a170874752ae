"""Targets (docs/design.md (Targets and payloads)): listed with secrets redacted and each one's breaker state, a
synthetic test alert sent through the whole pipeline to one of them, and the targets file's JSON Schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import Role, require
from api.errors import ApiError
from api.params import invalid_field, json_body
from api.schemas_targets import TEST_SEVERITIES, TestAlertRequest
from api.services import services
from api.timefmt import breaker_json, health_json
from publishing.alert import Alert, AlertStatus, EnrichedAlert
from publishing.target_schema import targets_json_schema

bp = Blueprint("targets", __name__, url_prefix="/api/v2/publishing/targets")
DEFAULT_TEST_SEVERITY = TestAlertRequest.model_fields["severity"].default.value


@bp.get("")
@require(Role.READER)
def list_targets() -> ResponseReturnValue:
    svc = services()
    targets = [
        {
            **t.to_public_dict(),
            "breaker": breaker_json(svc.breakers.status(t.name).to_dict()),
            "health": health_json(svc.health.get(t.name).to_dict()),
        }
        for t in svc.registry.all()
    ]
    return jsonify({"targets": targets})


@bp.get("/schema")
@require(Role.READER)
def schema() -> ResponseReturnValue:
    """The targets-file JSON Schema, as shipped in ``deploy/targets.schema.json``."""
    return jsonify(targets_json_schema())


@bp.get("/<name>")
@require(Role.READER)
def get_target(name: str) -> ResponseReturnValue:
    svc = services()
    target = svc.registry.get(name)
    return jsonify(
        {
            **target.to_public_dict(),
            "breaker": breaker_json(svc.breakers.status(name).to_dict()),
            "health": health_json(svc.health.get(name).to_dict()),
        }
    )


def synthetic_alert(target: str, severity: str, now: float) -> EnrichedAlert:
    """A firing alert that says what it is; its own fingerprint, so no receiver merges it with
    a real incident or an earlier test."""
    labels = {"alertname": "PublishingTestAlert", "severity": severity, "publishing_test": "true"}
    return EnrichedAlert(
        Alert(
            fingerprint=f"test-{uuid.uuid4().hex[:16]}",
            alert_name="PublishingTestAlert",
            status=AlertStatus.FIRING,
            labels=labels,
            annotations={
                "summary": f"Test alert for target {target}",
                "description": "Sent on request through the publishing API to check this target's delivery.",
            },
            starts_at=datetime.fromtimestamp(now, UTC),
        )
    )


@bp.post("/<name>/test")
@require(Role.ADMIN)
def send_test(name: str) -> ResponseReturnValue:
    body: Any = json_body(default={})
    if not isinstance(body, dict):
        raise invalid_field("$", body, 'must be an object such as {"severity": "warning"}')
    severity = body.get("severity", DEFAULT_TEST_SEVERITY)
    if severity not in TEST_SEVERITIES:
        raise invalid_field("severity", severity, f"must be one of {'|'.join(TEST_SEVERITIES)}")
    svc = services()
    target = svc.registry.get(name)
    if not target.enabled:
        raise ApiError(409, "target_disabled", f"target {name!r} is disabled", {"target": name})
    job = svc.submitter.submit_job(synthetic_alert(name, severity, svc.clock()), target)
    return jsonify(
        {
            "job_id": job.job_id,
            "target": job.target,
            "priority": job.priority.value,
            "fingerprint": job.alert.alert.fingerprint,
        }
    ), 202
