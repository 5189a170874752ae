"""Gunicorn settings for the API in the fleet: the defaults, request limits above the API's own
caps (so an over-long URL or header gets the API's JSON 414 or 431, not gunicorn's HTML), and
the two hooks that keep prometheus-client's multiprocess files right (every gunicorn worker
writes its counters to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up). gunicorn's
own error and access lines are JSON like the app's."""

import os
import sys
from pathlib import Path
from typing import Any

from api.limits import GUNICORN_LIMITS, answer_gunicorn_errors_in_json
from publishing.adapters.logs import gunicorn_logconfig
from publishing.adapters.target_files import check_targets
from publishing.errors import ConfigError
from publishing.settings import Settings

bind = "0.0.0.0:8080"
# WEB_CONCURRENCY is gunicorn's own variable; each worker is one process with one thread.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# A request never waits on a target (the API only enqueues), so 30 s is generous.
timeout = 30
graceful_timeout = 20
accesslog = "-"
logconfig_dict = gunicorn_logconfig()
limit_request_line = GUNICORN_LIMITS["limit_request_line"]
limit_request_fields = GUNICORN_LIMITS["limit_request_fields"]
limit_request_field_size = GUNICORN_LIMITS["limit_request_field_size"]
# What gunicorn refuses itself (a header over its limits, a NUL in a header) answers JSON too.
answer_gunicorn_errors_in_json()
# The root filesystem is read-only and the user has no home for ~/.gunicorn/gunicorn.ctl.
control_socket_disable = True


def on_starting(server: Any) -> None:
    # Refuse in the master, before any worker boots: one line, instead of every worker failing
    # to load the app (api.wsgi) at once.
    try:
        settings = Settings.from_env(os.environ)
        settings.check_api_access()
        check_targets(settings.targets_path)
    except ConfigError as exc:
        print(f"publishing API: {exc}", file=sys.stderr, flush=True)
        sys.exit(4)  # gunicorn's "app failed to load"
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
