"""Worker-process signals: the pool's job slots (connection pools, busy/idle gauges, the soft
time limit of a gevent pool), per-node processing time, multiprocess metric files of dead
children, the worker's own ``/metrics`` endpoint, and logging (JSON lines in the worker and
in Flower, Celery's shutdown notices included)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from celery import Celery, signals
from celery import concurrency as concurrency_impl
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.solo import TaskPool as SoloPool
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from prometheus_client import multiprocess, start_http_server

from publishing.adapters import metrics
from publishing.adapters.capacity import HEADROOM, set_job_slots
from publishing.adapters.composition import forget_services, services_for
from publishing.adapters.green import make_psycopg2_cooperative
from publishing.adapters.heap import freeze_startup_heap
from publishing.adapters.logs import JsonFormatter, configure_logging, is_json
from publishing.adapters.target_files import registry_from_path
from publishing.settings import Settings, warn_unknown_variables
from publishing.targets import TargetRegistry
from workers import history, reconciler
from workers.celery_app import settings_of

log = logging.getLogger(__name__)

# The jobs in flight in this process: their start, and on a gevent pool their soft limit.
_started: dict[str, float] = {}
_soft_limits: dict[str, Any] = {}
# A gevent pool enforces only the hard time limit (gevent.Timeout); the soft one is ours.
_green = False


def _on_celeryd_init(instance: Any = None, options: Any = None, **_: Any) -> None:
    """The first signal of ``celery worker``, before most things log (a log line builds the
    process's services, whose connection pools the job slots size; what logged earlier, such
    as Celery's warning to a worker run as root, has them built again)."""
    options = options or {}
    pool_cls = options.get("pool_cls") or instance.app.conf.worker_pool
    concurrency = options.get("concurrency") or instance.app.conf.worker_concurrency
    _use_pool(instance.app, pool_cls, concurrency)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before its pool starts, with the pool and concurrency
    settled (and for a worker started in-process, which sends no ``celeryd_init``)."""
    slots = _use_pool(sender.app, sender.pool_cls, sender.concurrency)
    if slots is not None:
        metrics.WORKERS_IDLE.set(slots)
        metrics.WORKERS_ACTIVE.set(0)


def _use_pool(app: Celery, pool_cls: Any, concurrency: Any) -> int | None:
    """How many jobs each process of this worker runs at once, which sizes its connection
    pools: one in a prefork child, ``-c`` in the one process of a gevent or threads pool,
    where ``worker_process_init`` never fires. Returns the slots of this process when it runs
    the jobs itself, None when its children do."""
    global _green
    pool = concurrency_impl.get_implementation(pool_cls)
    in_children = issubclass(pool, PreforkPool)
    try:
        slots = 1 if in_children or issubclass(pool, SoloPool) else max(1, int(concurrency))
    except (TypeError, ValueError):  # "auto" or unset: Celery settles it later, from the CPUs
        slots = 1
    set_job_slots(slots)
    # Anything logged before now (Celery's warning to root, say) built the services to learn
    # the secrets to redact, with pools sized for no pool: build them again, sized to it.
    forget_services()
    # kombu's Redis channel opens at most 10 connections (and fails past them): every slot of
    # an I/O pool acknowledges and publishes retries on its own, so ``Couldn't ack`` would
    # leave delivered jobs unacknowledged, to run again after the visibility timeout.
    options = dict(app.conf.broker_transport_options or {})
    options["max_connections"] = max(int(options.get("max_connections", 10)), slots + HEADROOM)
    app.conf.broker_transport_options = options
    _green = bool(getattr(pool, "is_green", False))
    if _green:
        make_psycopg2_cooperative()
    return None if in_children else slots


def _on_process_init(**_: Any) -> None:
    metrics.WORKERS_IDLE.set(1)
    metrics.WORKERS_ACTIVE.set(0)
    if _app_settings is not None:
        metrics.initialise_series(services_for(_app_settings).registry)
    # A prefork child's jobs do not stop for a walk over what it inherited and built to start.
    freeze_startup_heap()


def _on_prerun(task_id: str, task: Any, **_: Any) -> None:
    _started[task_id] = time.monotonic()
    metrics.WORKERS_IDLE.dec()
    metrics.WORKERS_ACTIVE.inc()
    if _green:
        _arm_soft_limit(task_id, task)


def _on_postrun(task_id: str, task: Any, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is None:
        return
    soft_limit = _soft_limits.pop(task_id, None)
    if soft_limit is not None:
        soft_limit.close()
    metrics.WORKER_PROCESSING.labels(task.request.hostname or "unknown").observe(time.monotonic() - started)
    metrics.WORKERS_ACTIVE.dec()
    metrics.WORKERS_IDLE.inc()


def _on_failure(task_id: str, exception: BaseException, sender: Any = None, **_: Any) -> None:
    # A gevent pool's hard limit ends the greenlet without a postrun: free its slot here.
    if isinstance(exception, TimeLimitExceeded) and task_id in _started and sender is not None:
        _on_postrun(task_id, sender)


def _arm_soft_limit(task_id: str, task: Any) -> None:
    """Raise ``SoftTimeLimitExceeded`` in the job's greenlet at its soft limit, as a prefork
    child's signal does: the job is then planned like any crash (docs/design.md (Retries))."""
    from gevent import Timeout

    limits = task.request.timelimit or (None, None)
    soft_s = limits[1] or task.soft_time_limit or task.app.conf.task_soft_time_limit
    if soft_s:
        _soft_limits[task_id] = Timeout.start_new(soft_s, SoftTimeLimitExceeded(soft_s))


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
    # Last, once everything start-up builds is built: a gevent or threads worker runs its jobs
    # in this process, and they do not stop for a walk over it.
    freeze_startup_heap()


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
    signals.celeryd_init.connect(_on_celeryd_init, weak=False)
    signals.worker_init.connect(_on_worker_init, weak=False)
    signals.worker_process_init.connect(_on_process_init, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)
    signals.task_postrun.connect(_on_postrun, weak=False)
    signals.task_failure.connect(_on_failure, weak=False)
    signals.worker_process_shutdown.connect(_on_process_shutdown, weak=False)
    signals.worker_ready.connect(_on_worker_ready, weak=False)
