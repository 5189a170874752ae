"""Metrics shared by the processes of one node (gunicorn workers, prefork children) through
prometheus-client's multiprocess mode. Imports nothing of prometheus-client itself: the
directory must be set before that library is first imported."""

from __future__ import annotations

import os
import sys
import tempfile


def use_multiprocess_dir(prefix: str) -> None:
    """Write this node's metrics to files in ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
    directory unless one is given)."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix=prefix))
    # A command may have imported prometheus_client already (Flower's plugin does, for the
    # celery command), before the directory was set: choose its value class again, before
    # any metric exists.
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
