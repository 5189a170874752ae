"""Gunicorn settings for the API in the fleet: the defaults, and the two hooks that keep
prometheus-client's multiprocess files right (every gunicorn worker writes its counters to
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up)."""

import os
from pathlib import Path
from typing import Any

bind = "0.0.0.0:8080"
# WEB_CONCURRENCY is gunicorn's own variable; each worker is one process with one thread.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# A request never waits on a target (the API only enqueues), so 30 s is generous.
timeout = 30
graceful_timeout = 20
accesslog = "-"
# The root filesystem is read-only and the user has no home for ~/.gunicorn/gunicorn.ctl.
control_socket_disable = True


def on_starting(server: Any) -> None:
    # Files left by an earlier run (a container restarted on the same volume) would be
    # added to this run's counters.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
