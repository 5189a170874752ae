"""Entry point for ``celery -A workers.main``: builds the app from the environment."""

import os

from publishing.settings import Settings
from workers.celery_app import create_celery_app

app = create_celery_app(Settings.from_env(os.environ))
