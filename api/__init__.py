"""The Flask API (docs/design.md (API and access)): ``create_app`` wires settings, services, auth, the JSON error
shape and one blueprint a concern. Nothing is built at import time; ``api.wsgi`` does that."""

from __future__ import annotations

import os

from flask import Flask

from api import auth, errors
from api.services import EXTENSION, ApiServices
from publishing.settings import Settings


def create_app(settings: Settings | None = None, services: ApiServices | None = None) -> Flask:
    from api import breakers, dlq, health, jobs, metrics, openapi, queue, targets, webhook

    settings = settings or Settings.from_env(os.environ)
    app = Flask(__name__)
    # werkzeug answers a larger body with 413 before we parse it.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["PUBLISHING_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = services or ApiServices.from_settings(settings)
    errors.init_app(app)
    auth.init_app(app, settings.api_tokens)
    for module in (webhook, queue, jobs, dlq, targets, breakers, health, openapi, metrics):
        app.register_blueprint(module.bp)
    return app
