"""The operator console (docs/operations.md (The console)): server-rendered pages under
``/ui/`` over the same services, tokens and roles as the JSON API.

It is an app of its own, mounted beside the API's: its signed session, CSRF checks and HTML
error pages stay out of the API, every answer of which is JSON and every route of which is
in the OpenAPI document. It shares the API's services and token table, so it reads and acts
exactly as the API does."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask, render_template
from flask.typing import ErrorHandlerCallable, ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from api import auth, request_guard, services
from api.errors import ApiError, register_error_handlers
from api.ui import dead_letters, jobs, overview, signin, targets  # noqa: F401  (their routes)
from api.ui import session as console_session
from api.ui.blueprint import bp
from publishing.errors import NotFoundError, UnknownTargetError

log = logging.getLogger(__name__)

PREFIX = "/ui"
EXTENSION = "publishing.ui"


def _page(status: int, title: str, message: str) -> ResponseReturnValue:
    return render_template("error.html", status=status, title=title, message=message), status


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return _page(exc.code or 500, exc.name, exc.description or exc.name)


def _refused(exc: ApiError) -> ResponseReturnValue:
    return _page(exc.status, exc.code.replace("_", " ").capitalize(), exc.message)


def _not_found(exc: NotFoundError | UnknownTargetError) -> ResponseReturnValue:
    return _page(404, "Not found", str(exc))


def _database_down(exc: Exception) -> ResponseReturnValue:
    return _page(503, "Unavailable", "The dead-letter database is unavailable; try again shortly.")


def _redis_down(exc: Exception) -> ResponseReturnValue:
    log.warning("Redis is unavailable: %s", type(exc).__name__)
    return _page(503, "Unavailable", "Redis is unavailable; try again shortly.")


def _unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unhandled error in the console")
    return _page(500, "Internal error", "An unexpected error occurred; it has been logged.")


_PAGES: dict[type[Exception], ErrorHandlerCallable] = {
    HTTPException: _http_error,
    ApiError: _refused,
    NotFoundError: _not_found,
    UnknownTargetError: _not_found,
}


def create_console(api: Flask, environ: Mapping[str, str] = os.environ) -> Flask:
    """The console over ``api``'s services and tokens (``api`` is fully configured)."""
    settings = api.config["PUBLISHING_SETTINGS"]
    console = Flask(__name__, static_folder=None)
    console.config["PUBLISHING_SETTINGS"] = settings
    console.config["MAX_CONTENT_LENGTH"] = api.config["MAX_CONTENT_LENGTH"]
    console.config["SESSION_COOKIE_PATH"] = PREFIX
    for name in (services.EXTENSION, auth.EXTENSION):
        console.extensions[name] = api.extensions[name]
    console.extensions[overview.WORKERS] = overview.WorkerSightings()
    console_session.configure(console, console_session.console_secret(settings, environ))
    request_guard.init_app(console)
    register_error_handlers(
        console, _PAGES, database_down=_database_down, redis_down=_redis_down, unexpected=_unexpected
    )
    console.register_blueprint(bp)
    return console


def mount_console(api: Flask, environ: Mapping[str, str] = os.environ) -> None:
    """Serve the console at ``/ui/`` from ``api``'s WSGI callable (gunicorn, ``flask run`` and
    the test client all go through it)."""
    console = create_console(api, environ)
    api.extensions[EXTENSION] = console
    api.wsgi_app = DispatcherMiddleware(api.wsgi_app, {PREFIX: console})  # type: ignore[method-assign]
