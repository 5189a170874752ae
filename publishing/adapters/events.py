"""Operational events carried out (docs/design.md (Events)): the ``events:`` key read from the
targets files, and the sender that turns what ``publishing.events`` decides into jobs on the
``high`` queue. Nothing here may hold up or fail a delivery: every problem is logged."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from publishing.adapters import metrics
from publishing.adapters.target_files import _files
from publishing.errors import UnknownTargetError
from publishing.events import (
    REPEAT_EVERY_S,
    REPEATED,
    EventMarks,
    EventsConfig,
    EventsSpec,
    EventType,
    OpsEvent,
    about_events_target,
    event_alert,
    events_for,
)
from publishing.job import Job
from publishing.plan import Event
from publishing.submission import Submitter
from publishing.targets import TargetRegistry

log = logging.getLogger("publishing.events")

# The files are looked at no more often than this: the hot path pays a clock read.
CHECK_EVERY_S = 1.0


def load_events(path: Path | None) -> EventsConfig:
    """The ``events:`` key of the targets files (the first file that has one)."""
    if path is None or not path.exists():
        return EventsConfig()
    for file in _files(path):
        document = yaml.safe_load(file.read_text())
        if isinstance(document, dict) and document.get("events") is not None:
            return EventsConfig.from_spec(EventsSpec.model_validate(document["events"]))
    return EventsConfig()


class EventsConfigFile:
    """The events configuration, re-read when the targets files change; a file that does not
    parse keeps the last good configuration (the targets loader names the problem)."""

    def __init__(self, path: Path | None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._signature: object = None
        self._config = EventsConfig()

    def _signature_now(self) -> object:
        if self._path is None or not self._path.exists():
            return None
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in _files(self._path))

    def __call__(self) -> EventsConfig:
        now = self._monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return self._config
        with self._lock:
            self._checked = now
            try:
                signature = self._signature_now()
                if signature != self._signature:
                    self._config = load_events(self._path)
                    self._signature = signature
            except (OSError, yaml.YAMLError, ValidationError) as exc:
                log.warning("events configuration not (re)loaded: %s", type(exc).__name__)
        return self._config


@dataclass(frozen=True, slots=True, eq=False)
class EventSender:
    """Turns what ``publishing.events`` decides into jobs for the events targets; ``config`` is
    asked on every event, so a changed targets file applies to the next one."""

    config: Callable[[], EventsConfig]
    registry: TargetRegistry
    submitter: Submitter
    marks: EventMarks

    def dlq_threshold(self) -> int | None:
        """The DLQ size past which ``dlq_over`` is sent, when it is wanted."""
        config = self.config()
        return config.dlq_over if config.enabled and EventType.DLQ_OVER in config.on else None

    def after(self, job: Job, event: Event, now: float) -> None:
        """The events of one run of a job (most runs have none, and cost nothing)."""
        try:
            for ops_event in events_for(job, event, now):
                self.send(ops_event, job)
        except Exception as exc:
            log.warning("events of job %s not sent: %s", job.job_id, type(exc).__name__)

    def send(self, event: OpsEvent, job: Job | None = None) -> None:
        config = self.config()
        if not config.enabled or event.type not in config.on:
            return
        if about_events_target(event, job, config):
            metrics.EVENTS_SUPPRESSED.labels(event.type.value).inc()
            log.info(
                "event %s about events target %s not sent (no loops)",
                event.type.value,
                event.target,
                extra={"event": event.type.value, "target": event.target},
            )
            return
        try:
            if event.type in REPEATED and not self.marks.first(
                event.type.value, event.target or "", REPEAT_EVERY_S
            ):
                return
            alert = event_alert(event)
            for name in config.targets:
                try:
                    target = self.registry.get(name)
                except UnknownTargetError:
                    log.warning("events target %s is not configured", name)
                    continue
                if target.enabled:
                    job_id = self.submitter.submit_job(alert, target).job_id
                    metrics.EVENTS_SENT.labels(event.type.value).inc()
                    log.info("event %s sent to %s as job %s", event.type.value, name, job_id,
                             extra={"event": event.type.value, "target": name})  # fmt: skip
        except Exception as exc:
            log.warning("event %s not sent: %s: %s", event.type.value, type(exc).__name__, str(exc)[:200])
