"""Worker-process signals: busy/idle gauges, per-node processing time, multiprocess metric
files of dead children, the worker's own ``/metrics`` endpoint, and logging (JSON lines in
the worker and in Flower, Celery's shutdown notices included)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from celery import Celery, signals
from prometheus_client import multiprocess, start_http_server

from publishing.adapters import metrics
from publishing.adapters.composition import services_for
from publishing.adapters.logs import JsonFormatter, configure_logging, is_json
from publishing.adapters.target_files import registry_from_path
from publishing.settings import Settings, warn_unknown_variables
from publishing.targets import TargetRegistry
from workers import history, reconciler
from workers.celery_app import settings_of

log = logging.getLogger(__name__)

_started: dict[str, float] = {}


def _on_process_init(**_: Any) -> None:
    metrics.WORKERS_IDLE.set(1)
    metrics.WORKERS_ACTIVE.set(0)
    if _app_settings is not None:
        metrics.initialise_series(services_for(_app_settings).registry)


def _on_prerun(task_id: str, **_: Any) -> None:
    _started[task_id] = time.monotonic()
    metrics.WORKERS_IDLE.set(0)
    metrics.WORKERS_ACTIVE.set(1)


def _on_postrun(task_id: str, task: Any, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        metrics.WORKER_PROCESSING.labels(task.request.hostname or "unknown").observe(
            time.monotonic() - started
        )
    metrics.WORKERS_ACTIVE.set(0)
    metrics.WORKERS_IDLE.set(1)


def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


def _on_worker_ready(**_: Any) -> None:
    if _app_settings is not None:
        # The main process serves /metrics (and runs the tasks of a thread pool): its own
        # registry, followed at each scrape, so a reloaded target's series appear too.
        global _series_registry
        _series_registry = registry_from_path(_app_settings.targets_path)
        metrics.initialise_series(_series_registry)
    port = int(os.environ.get("PUBLISHING_WORKER_METRICS_PORT", "0") or 0)
    if port:
        start_http_server(port, registry=metrics.exposition_registry())
        log.info("worker metrics on :%d/metrics", port)
    if _app_settings is not None:
        # In the worker's main process, not in its pool's children.
        reconciler.start(_app_settings)
        history.start(_app_settings)


def _on_setup_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from configuring logging itself.
    settings = _app_settings
    if settings is None:
        configure_logging()
    else:
        configure_logging(lambda: services_for(settings).registry.secrets())
    global _warned
    if not _warned:
        _warned = True
        warn_unknown_variables(os.environ)


def _say_as_json(message: str, file: Any = None) -> None:
    """Celery's notices written from a signal handler past logging ("worker: Warm shutdown"),
    as a JSON line like every other."""
    record = logging.makeLogRecord(
        {
            "name": "celery.apps.worker",
            "levelname": "WARNING",
            "levelno": logging.WARNING,
            "msg": message.strip(),
        }
    )
    os.write(
        sys.__stderr__.fileno() if sys.__stderr__ else 2, (JsonFormatter().format(record) + "\n").encode()
    )


def _on_import_modules(**_: Any) -> None:
    # Flower sets up tornado's text logging and never sends setup_logging: the last signal
    # before it serves is the moment to put ours in its place.
    _on_setup_logging()


_app_settings: Settings | None = None
_warned = False
# The main process's own view of the targets, for their metric series (metrics follow it weakly).
_series_registry: TargetRegistry | None = None


def install(app: Celery) -> None:
    global _app_settings
    _app_settings = settings_of(app)
    signals.setup_logging.connect(_on_setup_logging, weak=False)
    signals.import_modules.connect(_on_import_modules, sender=app, weak=False)
    if is_json():
        import celery.apps.worker

        celery.apps.worker.safe_say = _say_as_json
    signals.worker_process_init.connect(_on_process_init, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)
    signals.task_postrun.connect(_on_postrun, weak=False)
    signals.worker_process_shutdown.connect(_on_process_shutdown, weak=False)
    signals.worker_ready.connect(_on_worker_ready, weak=False)
