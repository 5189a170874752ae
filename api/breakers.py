"""Circuit breakers (docs/design.md (Circuit breaker)): every configured target's breaker, and an admin reset."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import Role, require
from api.services import services
from api.timefmt import breaker_json

bp = Blueprint("breakers", __name__, url_prefix="/api/v2/publishing/breakers")


@bp.get("")
@require(Role.READER)
def list_breakers() -> ResponseReturnValue:
    svc = services()
    return jsonify(
        {"breakers": [breaker_json(svc.breakers.status(t.name).to_dict()) for t in svc.registry.all()]}
    )


@bp.post("/<target>/reset")
@require(Role.ADMIN)
def reset(target: str) -> ResponseReturnValue:
    svc = services()
    svc.registry.get(target)  # UnknownTargetError -> 404
    svc.breakers.reset(target)
    return jsonify(breaker_json(svc.breakers.status(target).to_dict()))
