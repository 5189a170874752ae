"""Liveness (the process serves) and readiness (Redis and the database answer)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import auth_is_off
from api.errors import ApiError, error_response
from api.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks: dict[str, str] = services().readiness.check()
    down = [name for name, state in checks.items() if state != "ok"]
    # Said where every probe and dashboard sees it: a fleet must never run with auth off.
    answer = {**checks, "auth": "off" if auth_is_off() else "tokens"}
    if down:
        message = f"not ready: {' and '.join(down)} {'is' if len(down) == 1 else 'are'} down"
        return error_response(ApiError(503, "not_ready", message, answer))
    return jsonify(answer)
