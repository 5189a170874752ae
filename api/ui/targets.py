"""The targets pages: each target (redacted) with its breaker state and history, health,
pauses and rate limiting seen, and its fallback route."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from api.services import services
from api.ui.blueprint import bp


@bp.get("/targets")
def targets() -> ResponseReturnValue:
    svc = services()
    rows = [(t, svc.breakers.status(t.name), svc.health.get(t.name)) for t in svc.registry.all()]
    return render_template("targets.html", rows=rows)


@bp.get("/targets/<name>")
def target(name: str) -> ResponseReturnValue:
    svc = services()
    configured = svc.registry.get(name)  # UnknownTargetError: the 404 page
    return render_template(
        "target.html",
        target=configured,
        public=configured.to_public_dict(),
        breaker=svc.breakers.status(name),
        health=svc.health.get(name),
    )
