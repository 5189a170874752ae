"""The Celery app factory. Nothing is built at import time: ``workers.main`` calls this."""

from __future__ import annotations

from celery import Celery

from publishing.settings import Settings
from workers.config import celery_config


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("publishing", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.publishing_settings = settings
    from workers import observability, replay, tasks

    tasks.register(app)
    replay.register(app)
    observability.install(app)
    return app
