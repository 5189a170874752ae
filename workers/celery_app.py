"""The Celery app factory. Nothing is built at import time: ``workers.main`` calls this.

The settings ride on the app object, never in ``app.conf``: Celery shows its conf to
``celery inspect conf``/``report`` and Flower, and the settings hold connection URLs.
"""

from __future__ import annotations

from typing import cast

from celery import Celery

from publishing.settings import Settings
from workers.config import celery_config
from workers.event_batches import BatchTaskEvents

_SETTINGS = "_publishing_settings"


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("publishing", set_as_current=False)
    app.conf.update(celery_config(settings))
    setattr(app, _SETTINGS, settings)
    from workers import observability, replay, tasks

    tasks.register(app)
    replay.register(app)
    observability.install(app)
    app.steps["consumer"].add(BatchTaskEvents)
    return app


def settings_of(app: Celery) -> Settings:
    return cast(Settings, getattr(app, _SETTINGS))
