"""Every error the API answers as ``{"error": code, "message": text, "details": {...}}``: our
own ``ApiError``, the domain's errors, a dependency that is down, and werkzeug's HTTP errors
(routing 404/405, the body cap's 413), so no response of ours is HTML."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import kombu.exceptions
import redis
from flask import Flask, Response, current_app, jsonify, request
from flask.typing import ErrorHandlerCallable
from werkzeug.exceptions import HTTPException

from publishing.errors import (
    AlreadyReplayedError,
    DatabaseUnavailableError,
    InvalidAlertError,
    NotFoundError,
    UnknownTargetError,
)
from publishing.replay import ReplayEnqueueError, ReplayRefusedError
from publishing.settings import Settings, redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

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


class NotFoundKind(StrEnum):
    """What a 404 (``not_found``) did not find, as ``details.kind``."""

    JOB = "job"
    TARGET = "target"
    DEAD_LETTER = "dead_letter"
    ATTEMPT = "attempt"
    REPLAY_RUN = "replay_run"
    ROUTE = "route"


# The domain's NotFoundError is one class for every record; the blueprint says which it was.
_KIND_OF_BLUEPRINT = {"dlq": NotFoundKind.DEAD_LETTER, "history": NotFoundKind.ATTEMPT}


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


def error_response(error: ApiError) -> Response:
    response = jsonify({"error": error.code, "message": error.message, "details": error.details})
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def not_found(kind: NotFoundKind, name: str, message: str) -> ApiError:
    """The one 404 of a missing record: code ``not_found``, ``details`` its kind and id."""
    return ApiError(404, "not_found", message, {"kind": kind.value, "id": name})


def found(record: T | None, kind: NotFoundKind, name: str, message: str) -> T:
    """``record``, or the 404 of ``not_found`` when there is none."""
    if record is None:
        raise not_found(kind, name, message)
    return record


_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "sentinel": 26379, "postgresql": 5432, "postgres": 5432}


def location(url: str) -> str:
    """Where a dependency's URL points, without its credentials: ``host:port`` (with the
    database's name), each of a ``;``-separated Sentinel list, or an SQLite file."""
    places = []
    for part in redact_url(url).split(";"):
        split = urlsplit(part)
        scheme = split.scheme.split("+")[0]
        if scheme == "sqlite":
            places.append(split.path.removeprefix("/") or ":memory:")
            continue
        try:
            port = split.port or _DEFAULT_PORTS.get(scheme)
        except ValueError:
            port = None
        place = f"{split.hostname or 'localhost'}:{port}" if port else (split.hostname or "localhost")
        if scheme.startswith("postgres") and split.path.strip("/"):
            place += split.path
        places.append(place)
    return ", ".join(places)


def _where(dependency: str) -> str | None:
    settings: Settings | None = current_app.config.get("PUBLISHING_SETTINGS")
    if settings is None:
        return None
    return location(settings.redis_url if dependency == "redis" else settings.database_url)


def dependency_down(dependency: str, exc: BaseException) -> ApiError:
    """A 503 that names the dependency (``redis`` or ``database``) and where it is, never a
    password."""
    what = "Redis" if dependency == "redis" else "the dead-letter database"
    where = _where(dependency)
    details: dict[str, Any] = {"dependency": dependency, "reason": type(exc).__name__}
    if where is not None:
        what += f" at {where}"
        details["at"] = where
    return ApiError(503, "dependency_unavailable", f"{what} is unavailable; try again later", details)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "www-authenticate")}
    details: dict[str, Any] = {}
    message = exc.description or exc.name
    if status == 404:
        message = f"no such endpoint: {request.method} {request.path}"
        details = {"kind": NotFoundKind.ROUTE.value, "path": request.path}
    elif status == 405:
        details["allowed_methods"] = [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        message = f"{request.method} is not allowed on {request.path}"
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        details["max_body_bytes"] = limit
        message = f"the request body is larger than the {limit} bytes allowed (PUBLISHING_MAX_BODY_BYTES)"
    return error_response(ApiError(status, code, message, details, headers))


def _invalid_alert(exc: InvalidAlertError) -> Response:
    return error_response(ApiError(422, "invalid_alert", str(exc), {"problems": exc.problems}))


def _unknown_target(exc: UnknownTargetError) -> Response:
    return error_response(not_found(NotFoundKind.TARGET, exc.name, str(exc)))


def _not_found(exc: NotFoundError) -> Response:
    kind = _KIND_OF_BLUEPRINT.get(request.blueprint or "")
    name = next(iter((request.view_args or {}).values()), None)
    details = {"kind": kind.value, "id": name} if kind is not None else {}
    return error_response(ApiError(404, "not_found", str(exc), details))


def _already_replayed(exc: AlreadyReplayedError) -> Response:
    details = {"id": exc.dead_letter_id, **exc.details}
    return error_response(ApiError(409, "already_replayed", str(exc), details))


def _replay_refused(exc: ReplayRefusedError) -> Response:
    details = {"id": exc.dead_letter_id, "reason": exc.reason}
    return error_response(ApiError(409, "replay_refused", str(exc), details))


def _replay_not_enqueued(exc: ReplayEnqueueError) -> Response:
    where = _where("redis")
    details = {
        "dependency": "redis",
        "at": where,
        "id": exc.dead_letter_id,
        "job_id": exc.job_id,
        "replay_result": "skipped",
    }
    message = f"Redis{f' at {where}' if where else ''} is unavailable: {exc}"
    return error_response(ApiError(503, "dependency_unavailable", message, details))


def _database_down(exc: DatabaseUnavailableError) -> Response:
    return error_response(dependency_down("database", exc))


def _redis_down(exc: Exception) -> Response:
    log.warning("Redis is unavailable: %s", type(exc).__name__)
    return error_response(dependency_down("redis", exc))


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(ApiError(500, "internal_error", "an unexpected error occurred; it has been logged"))


def register_error_handlers(
    app: Flask,
    handlers: Mapping[type[Exception], ErrorHandlerCallable],
    *,
    database_down: ErrorHandlerCallable,
    redis_down: ErrorHandlerCallable,
    unexpected: ErrorHandlerCallable,
) -> None:
    """``handlers``, and the answers that the API and the console both give in their own form:
    the database down, Redis down, and anything else unexpected."""
    for error, handler in handlers.items():
        app.register_error_handler(error, handler)
    app.register_error_handler(DatabaseUnavailableError, database_down)
    # The broker is Redis: kombu's OperationalError is Redis being unreachable.
    app.register_error_handler(redis.RedisError, redis_down)
    app.register_error_handler(kombu.exceptions.OperationalError, redis_down)
    app.register_error_handler(Exception, unexpected)


_HANDLERS: dict[type[Exception], ErrorHandlerCallable] = {
    ApiError: error_response,
    HTTPException: _http_error,
    InvalidAlertError: _invalid_alert,
    UnknownTargetError: _unknown_target,
    NotFoundError: _not_found,
    AlreadyReplayedError: _already_replayed,
    ReplayRefusedError: _replay_refused,
    ReplayEnqueueError: _replay_not_enqueued,
}


def init_app(app: Flask) -> None:
    register_error_handlers(
        app, _HANDLERS, database_down=_database_down, redis_down=_redis_down, unexpected=_unexpected
    )
