"""Structured logs: one JSON object a line, with the job's id, target, priority, attempt and
error type when the line is about a job, and every known secret replaced by ``***``."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from publishing.job import Job
from publishing.targets import REDACTED

JOB_FIELDS = ("job_id", "target", "priority", "attempt", "error_type", "state")
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def job_context(job: Job, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a log call about a job."""
    return {
        "job_id": job.job_id,
        "target": job.target,
        "priority": job.priority.value,
        "attempt": job.retries + 1,
        **more,
    }


class Redactor(logging.Filter):
    """Replaces every secret the provider knows, in the message and in the extra fields."""

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._secrets = secrets

    @staticmethod
    def _scrub(text: str, secrets: list[str]) -> str:
        for secret in secrets:
            if secret and secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = sorted(self._secrets(), key=len, reverse=True)
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self._scrub(message, secrets), None
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text, secrets)
        record.exc_info = None
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and not isinstance(value, int | float):
                # The JSON formatter writes an extra field as it is, or as its JSON.
                text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                scrubbed = self._scrub(text, secrets)
                if scrubbed != text:
                    record.__dict__[key] = scrubbed
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Celery's per-task lines ("Task ... received", "... succeeded in ...") carry a job's whole
# arguments, once a task each: kept for PUBLISHING_LOG_LEVEL=DEBUG.
_CHATTY = ("celery.app.trace", "celery.worker.strategy")


def _level() -> str:
    return os.environ.get("PUBLISHING_LOG_LEVEL", "INFO").upper()


def _formatter() -> logging.Formatter:
    return JsonFormatter() if is_json() else logging.Formatter(TEXT_FORMAT)


def configure_logging(secrets: Callable[[], Iterable[str]] = tuple, *, stream: Any = None) -> None:
    """Root logging for a process: JSON (or ``PUBLISHING_LOG_FORMAT=text``) at
    ``PUBLISHING_LOG_LEVEL`` (default INFO), redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level())
    # Python's warnings (Celery's SecurityWarning, deprecations) as log lines too.
    logging.captureWarnings(True)
    # urllib3 writes the request line (a Slack webhook's secret path) at DEBUG.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)


def is_json() -> bool:
    return os.environ.get("PUBLISHING_LOG_FORMAT", "json").lower() != "text"


def handler_of() -> logging.Handler:
    """The root's handler for ``logging.config.dictConfig`` (gunicorn's ``logconfig_dict``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter())
    handler.addFilter(Redactor(tuple))
    return handler


def gunicorn_logconfig() -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error and access loggers lose their text handlers and
    pass every line to the root's handler, the same JSON (and redaction) as the app's own."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"root": {"()": "publishing.adapters.logs.handler_of"}},
        "formatters": {},
        "root": {"level": _level(), "handlers": ["root"]},
        "loggers": {
            "gunicorn.error": {"level": _level(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }
