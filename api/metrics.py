"""``GET /metrics``: what this API process observed, plus the fleet's state read at scrape
time from Redis and the database (queue depth and age, breakers, DLQ size). No auth, as
Prometheus scrapes it."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.services import services
from publishing.adapters import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    return Response(metrics.render(services().metric_collectors), mimetype=CONTENT_TYPE_LATEST)
