"""Entry point for ``celery -A workers.main``: builds the app from the environment."""

import os
import sys

from publishing.adapters.multiprocess import use_multiprocess_dir

# Prefork children write their metrics to files; set before prometheus_client is imported.
use_multiprocess_dir("publishing-metrics-")
# Flower keeps every task it has seen in memory; bound it unless told otherwise.
os.environ.setdefault("FLOWER_MAX_TASKS", "10000")


from publishing.adapters.target_files import check_targets  # noqa: E402
from publishing.errors import ConfigError  # noqa: E402
from publishing.settings import Settings  # noqa: E402
from workers import flower_guard  # noqa: E402
from workers.celery_app import create_celery_app  # noqa: E402

# A bad setting or targets file stops the worker (and Flower) with one line, not a traceback.
try:
    _settings = Settings.from_env(os.environ)
    check_targets(_settings.targets_path)
    app = create_celery_app(_settings)
except ConfigError as exc:
    sys.exit(f"publishing: {exc}")
flower_guard.install(app, os.environ)
