"""Alerts in: ``POST /webhook`` (Alertmanager v4) and ``POST /api/v2/publishing/submit``
(enriched alerts, optionally to named targets). A request is accepted whole or rejected whole:
nothing is enqueued before every alert has validated and every named target exists."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from api.auth import Role, require
from api.errors import ApiError
from api.params import invalid_field, json_body
from api.services import services, settings
from publishing.alert import EnrichedAlert, parse_alertmanager, parse_enriched
from publishing.errors import InvalidAlertError

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)

# Inputs on which publishing.alert raises instead of listing a problem: an unhashable
# classification.severity (an object or a list) is looked up in a set, and a timestamp whose
# UTC conversion leaves the years 1..9999 overflows. They are invalid alerts, not server errors.
_PARSER_SLIPS: dict[type[Exception], str] = {
    TypeError: "a value has the wrong type (classification.severity must be a string)",
    OverflowError: "a timestamp is out of range: in UTC it must fall in the years 1 to 9999",
}


def _check_count(items: Any) -> None:
    """413 before parsing a request with more alerts than allowed (the parsers check it too)."""
    limit = settings().max_alerts_per_request
    if isinstance(items, list) and len(items) > limit:
        services().observe_rejected(1)
        raise ApiError(
            413,
            "too_many_alerts",
            f"the request holds {len(items)} alerts; at most {limit} are accepted a request",
            {"count": len(items), "max_alerts": limit},
        )


def _parse(parser: Callable[..., list[EnrichedAlert]], payload: Any) -> list[EnrichedAlert]:
    try:
        return parser(payload, max_alerts=settings().max_alerts_per_request, limits=settings().field_limits)
    except InvalidAlertError:
        services().observe_rejected(1)
        raise
    except (TypeError, OverflowError) as exc:
        log.warning("alert rejected by a %s in the parser: %s", type(exc).__name__, exc)
        services().observe_rejected(1)
        raise InvalidAlertError([{"field": "$", "message": _PARSER_SLIPS[type(exc)]}]) from exc


def _accept(alerts: list[EnrichedAlert], targets: list[str] | None = None) -> tuple[Response, int]:
    result = services().submitter.submit(alerts, targets)
    services().observe_submission(result)
    return jsonify(result.to_dict()), 202


@bp.post("/webhook")
@require(Role.OPERATOR)
def webhook() -> tuple[Response, int]:
    payload = json_body()
    if isinstance(payload, dict):
        _check_count(payload.get("alerts"))
    return _accept(_parse(parse_alertmanager, payload))


def _target_names(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise invalid_field("targets", raw, "must be a list of target names")
    if not raw:
        raise invalid_field("targets", raw, "must name at least one target (leave it out to route by filter)")
    return list(dict.fromkeys(raw))


@bp.post("/api/v2/publishing/submit")
@require(Role.OPERATOR)
def submit() -> tuple[Response, int]:
    payload = json_body()
    targets: list[str] | None = None
    if isinstance(payload, dict) and "targets" in payload:
        targets = _target_names(payload["targets"])
        payload = {k: v for k, v in payload.items() if k != "targets"}
    if isinstance(payload, list):
        _check_count(payload)
    elif isinstance(payload, dict) and "alerts" in payload and "alert" not in payload:
        _check_count(payload["alerts"])
    return _accept(_parse(parse_enriched, payload), targets)
