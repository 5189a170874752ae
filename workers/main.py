"""Entry point for ``celery -A workers.main``: builds the app from the environment."""

import os

from publishing.adapters.multiprocess import use_multiprocess_dir

# Prefork children write their metrics to files; set before prometheus_client is imported.
use_multiprocess_dir("publishing-metrics-")
# Flower keeps every task it has seen in memory; bound it unless told otherwise.
os.environ.setdefault("FLOWER_MAX_TASKS", "10000")

from publishing.settings import Settings  # noqa: E402
from workers import flower_guard  # noqa: E402
from workers.celery_app import create_celery_app  # noqa: E402

app = create_celery_app(Settings.from_env(os.environ))
flower_guard.install(app, os.environ)
