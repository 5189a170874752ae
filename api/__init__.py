"""The Flask API (docs/design.md (API and access)): ``create_app`` wires settings, services, auth, the JSON error
shape and one blueprint a concern. Nothing is built at import time; ``api.wsgi`` does that."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from publishing.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

    from api.services import ApiServices


def create_app(settings: Settings | None = None, services: ApiServices | None = None) -> Flask:
    # Imported here, not with the package: gunicorn's master reads ``api.limits`` before the
    # multiprocess metrics directory exists, and must not load the app's modules.
    from flask import Flask

    from api import (
        auth,
        breakers,
        dlq,
        errors,
        health,
        history,
        jobs,
        metrics,
        openapi,
        queue,
        request_guard,
        targets,
        webhook,
    )
    from api.services import EXTENSION, ApiServices

    settings = settings or Settings.from_env(os.environ)
    settings.check_api_access()
    app = Flask(__name__)
    # werkzeug answers a larger body with 413 before we parse it.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["PUBLISHING_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = services or ApiServices.from_settings(settings)
    # Every labelled series at 0 from the start (and a reloaded target's from its reload).
    from publishing.adapters.metrics import initialise_series

    initialise_series(app.extensions[EXTENSION].registry)
    errors.init_app(app)
    request_guard.init_app(app)
    auth.init_app(app, settings.api_tokens)
    for module in (webhook, queue, jobs, history, dlq, targets, breakers, health, openapi, metrics):
        app.register_blueprint(module.bp)
    # The operator console's HTML pages at /ui/: an app of its own beside this one (api/ui).
    from api.ui import mount_console

    mount_console(app)
    return app
