"""Every error the API answers as ``{"error": code, "message": text, "details": {...}}``: our
own ``ApiError``, the domain's errors, a dependency that is down, and werkzeug's HTTP errors
(routing 404/405, the body cap's 413), so no response of ours is HTML."""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from publishing.errors import (
    AlreadyReplayedError,
    DatabaseUnavailableError,
    InvalidAlertError,
    NotFoundError,
    UnknownTargetError,
)
from publishing.replay import ReplayEnqueueError, ReplayRefusedError

log = logging.getLogger(__name__)

# werkzeug's names for the statuses it raises, as our codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error response: HTTP ``status``, a stable ``code`` and a human ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = jsonify({"error": code, "message": message, "details": details or {}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def dependency_down(dependency: str, exc: BaseException) -> ApiError:
    """A 503 that names the dependency (``redis`` or ``database``), never its URL."""
    what = "Redis" if dependency == "redis" else "the dead-letter database"
    return ApiError(
        503,
        "dependency_unavailable",
        f"{what} is unavailable; try again later",
        {"dependency": dependency, "reason": type(exc).__name__},
    )


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "www-authenticate")}
    details: dict[str, Any] = {}
    message = exc.description or exc.name
    if status == 404:
        message = f"no such endpoint: {request.method} {request.path}"
    elif status == 405:
        details["allowed_methods"] = [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        message = f"{request.method} is not allowed on {request.path}"
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        details["max_body_bytes"] = limit
        message = f"the request body is larger than the {limit} bytes allowed (PUBLISHING_MAX_BODY_BYTES)"
    return error_response(status, code, message, details, headers)


def _invalid_alert(exc: InvalidAlertError) -> Response:
    return error_response(422, "invalid_alert", str(exc), {"problems": exc.problems})


def _unknown_target(exc: UnknownTargetError) -> Response:
    return error_response(404, "target_not_found", str(exc), {"target": exc.name})


def _not_found(exc: NotFoundError) -> Response:
    return error_response(404, "not_found", str(exc))


def _already_replayed(exc: AlreadyReplayedError) -> Response:
    return error_response(409, "already_replayed", str(exc), {"id": exc.dead_letter_id, **exc.details})


def _replay_refused(exc: ReplayRefusedError) -> Response:
    return error_response(409, "replay_refused", str(exc), {"id": exc.dead_letter_id, "reason": exc.reason})


def _replay_not_enqueued(exc: ReplayEnqueueError) -> Response:
    return error_response(
        503,
        "dependency_unavailable",
        f"Redis is unavailable: {exc}",
        {"dependency": "redis", "id": exc.dead_letter_id, "job_id": exc.job_id, "replay_result": "skipped"},
    )


def _database_down(exc: DatabaseUnavailableError) -> Response:
    return _api_error(dependency_down("database", exc))


def _redis_down(exc: Exception) -> Response:
    log.warning("Redis is unavailable: %s", type(exc).__name__)
    return _api_error(dependency_down("redis", exc))


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InvalidAlertError, _invalid_alert)
    app.register_error_handler(UnknownTargetError, _unknown_target)
    app.register_error_handler(NotFoundError, _not_found)
    app.register_error_handler(AlreadyReplayedError, _already_replayed)
    app.register_error_handler(ReplayRefusedError, _replay_refused)
    app.register_error_handler(ReplayEnqueueError, _replay_not_enqueued)
    app.register_error_handler(DatabaseUnavailableError, _database_down)
    # The broker is Redis: kombu's OperationalError is Redis being unreachable.
    app.register_error_handler(redis.RedisError, _redis_down)
    app.register_error_handler(kombu.exceptions.OperationalError, _redis_down)
    app.register_error_handler(Exception, _unexpected)
