"""Structured logs: JSON lines with the job's context, secrets redacted everywhere."""

from __future__ import annotations

import io
import json
import logging

import pytest

from publishing.adapters.logs import configure_logging, job_context
from publishing.alert import parse_alertmanager
from publishing.job import Job
from publishing.priority import Priority

SECRET = "sekrit-routing-key-123"


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PUBLISHING_LOG_FORMAT", raising=False)
    monkeypatch.setenv("PUBLISHING_LOG_LEVEL", "DEBUG")
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(lambda: [SECRET], stream=out)
    yield out
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def job() -> Job:
    (alert,) = parse_alertmanager(
        {"alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}]}
    )
    return Job("job-1", "pd", Priority.HIGH, alert, 0.0, retries=2)


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_about_a_job_carries_its_context(stream) -> None:
    logging.getLogger("workers.tasks").info(
        "job %s failed", "job-1", extra=job_context(job(), error_type="transient")
    )
    (line,) = lines(stream)
    assert line["message"] == "job job-1 failed"
    assert line["level"] == "info"
    assert line["job_id"] == "job-1"
    assert line["target"] == "pd"
    assert line["priority"] == "high"
    assert line["attempt"] == 3
    assert line["error_type"] == "transient"


def test_secrets_are_redacted_in_messages_arguments_and_tracebacks(stream) -> None:
    log = logging.getLogger("anything")
    log.debug("routing key %s", SECRET)
    try:
        raise ValueError(f"bad key {SECRET}")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert SECRET not in text
    assert text.count("***") >= 2


def test_urllib3_request_lines_are_not_logged_at_debug(stream) -> None:
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.INFO


def test_secrets_are_redacted_in_extra_fields(stream) -> None:
    logging.getLogger("workers.tasks").warning(
        "job failed", extra=job_context(job(), error=f"HTTP 401: bad key {SECRET}", tags=[SECRET])
    )
    (line,) = lines(stream)
    assert SECRET not in json.dumps(line)
    assert line["error"] == "HTTP 401: bad key ***"
