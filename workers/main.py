"""Entry point for ``celery -A workers.main``: builds the app from the environment."""

import os
import sys
import tempfile

# Prefork children write their metrics to files here; it must be set before
# prometheus_client is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="publishing-metrics-"))
# The celery command may have imported prometheus_client already (Flower's plugin does),
# before the directory was set: choose its value class again, before any metric exists.
if "prometheus_client.values" in sys.modules:
    values = sys.modules["prometheus_client.values"]
    values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
# Flower keeps every task it has seen in memory; bound it unless told otherwise.
os.environ.setdefault("FLOWER_MAX_TASKS", "10000")

from publishing.settings import Settings
from workers.celery_app import create_celery_app

app = create_celery_app(Settings.from_env(os.environ))
