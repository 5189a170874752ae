"""The ``publishing`` command line against the API app on in-memory fakes: requests goes
through a transport adapter that calls the WSGI app, so no socket is opened."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from api import cli, create_app
from api.testing import TOKENS, InMemoryApi, in_memory_api, settings_with_tokens
from publishing.alert import Severity
from publishing.breaker import BreakerConfig
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter
from publishing.priority import Priority
from publishing.tracking import JobState

TARGETS = [
    {"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
    {"name": "slack-ops", "type": "slack", "url": "http://127.0.0.1:9/services/T0/B0/SECRET"},
]


class WsgiAdapter(BaseAdapter):
    def __init__(self, app: Flask) -> None:
        super().__init__()
        self._client = app.test_client()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        answer = self._client.open(
            url.path + (f"?{url.query}" if url.query else ""),
            method=request.method or "GET",
            data=request.body,
            headers=dict(request.headers),
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.data
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def letter(now: datetime, *, target: str = "ops-webhook", age: timedelta = timedelta(hours=1)) -> DeadLetter:
    return DeadLetter(
        id=str(uuid.uuid4()),
        job_id=str(uuid.uuid4()),
        fingerprint="fp",
        target_name=target,
        target_type="webhook",
        enriched_alert={
            "alert": {
                "alert_name": "DiskFull",
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "warning"},
                "starts_at": "2023-01-01T00:00:00Z",
            }
        },
        target_config={"name": target},
        error_message="PermanentPublishError: HTTP 400 from the target",
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority.MEDIUM,
        failed_at=now - age,
    )


@pytest.fixture
def mem() -> InMemoryApi:
    return in_memory_api(TARGETS)


@pytest.fixture
def now(mem: InMemoryApi) -> datetime:
    return datetime.fromtimestamp(mem.clock(), UTC)


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(mem: InMemoryApi, monkeypatch: pytest.MonkeyPatch) -> Run:
    app = create_app(settings_with_tokens(), mem.services)
    real_session = requests.Session

    def session() -> requests.Session:
        s = real_session()
        s.mount("http://", WsgiAdapter(app))
        return s

    monkeypatch.setattr(cli.requests, "Session", session)
    monkeypatch.setattr(cli, "POLL_S", 0)
    monkeypatch.setenv("PUBLISHING_API_TOKEN", TOKENS["admin"])

    def invoke(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out, err)
        return code, out.getvalue(), err.getvalue()

    return invoke


def test_test_alert(run: Run, mem: InMemoryApi) -> None:
    code, out, _ = run("-o", "json", "test-alert", "ops-webhook", "--severity", "critical")
    assert code == 0
    body = json.loads(out)
    (job,) = mem.enqueuer.sent
    assert body["job_id"] == job.job_id
    assert body["priority"] == "high"


def test_an_api_error_exits_non_zero_with_its_message(run: Run) -> None:
    code, out, err = run("test-alert", "nope")
    assert code == 1
    assert out == ""
    assert "unknown target 'nope'" in err
    assert "not_found, HTTP 404" in err


def test_without_a_token_the_api_says_so(run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PUBLISHING_API_TOKEN")
    monkeypatch.chdir(tmp_path)
    code, _, err = run("queue", "status")
    assert code == 1
    assert "a bearer token is required" in err


def test_the_token_make_run_keeps_in_var_is_used(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PUBLISHING_API_TOKEN")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "api-token").write_text(TOKENS["admin"] + "\n")
    code, _, err = run("queue", "status")
    assert code == 0, err


def test_the_environment_token_comes_before_the_file(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PUBLISHING_API_TOKEN", TOKENS["reader"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "api-token").write_text(TOKENS["admin"])
    code, _, err = run("dlq", "purge", "--older-than", "7d")
    assert code == 1
    assert "HTTP 403" in err


def test_an_unreachable_api_exits_3(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(requests.sessions.Session, "request", refuse)
    code, _, err = run("--url", "http://127.0.0.1:1", "queue", "status")
    assert code == cli.EXIT_UNREACHABLE
    assert "cannot reach the API at http://127.0.0.1:1" in err


def test_queue_status_table(run: Run) -> None:
    run("test-alert", "ops-webhook")
    code, out, _ = run("queue", "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["QUEUE", "DEPTH"]
    assert lines[2].split() == ["medium", "1"]
    assert lines[-1].split() == ["total", "1"]


def test_jobs_table_json_and_one(run: Run) -> None:
    _, out, _ = run("-o", "json", "test-alert", "ops-webhook")
    job_id = json.loads(out)["job_id"]
    code, out, _ = run("jobs", "--target", "ops-webhook")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["ID", "STATE", "PRIORITY", "TARGET"]
    assert job_id in out
    assert json.loads(run("-o", "json", "jobs", "--state", "queued")[1])["total"] == 1
    code, out, _ = run("jobs", job_id)
    assert code == 0
    assert "PublishingTestAlert" in out


def test_dlq_list_replay_and_replay_again(run: Run, mem: InMemoryApi, now: datetime) -> None:
    row = letter(now)
    mem.dead_letters.write(row)
    code, out, _ = run("dlq", "list", "--target", "ops-webhook", "--replayed", "false")
    assert code == 0
    assert row.id in out
    assert "1 of 1" in out

    code, out, _ = run("-o", "json", "dlq", "replay", row.id)
    assert code == 0
    assert json.loads(out)["dead_letter_id"] == row.id
    code, _, err = run("dlq", "replay", row.id)
    assert code == 1
    assert "already_replayed, HTTP 409" in err


def test_replay_all_dry_run_lists_and_sends_nothing(run: Run, mem: InMemoryApi, now: datetime) -> None:
    rows = [letter(now, age=timedelta(minutes=m)) for m in (1, 2)]
    for row in rows:
        mem.dead_letters.write(row)
    code, out, err = run("dlq", "replay-all", "--target", "ops-webhook", "--dry-run")
    assert code == 0
    assert out.split() == [r.id for r in rows]
    assert "2 rows would be replayed" in err
    assert mem.enqueuer.sent == []


def test_replay_all_shows_progress_until_done(run: Run, mem: InMemoryApi, now: datetime) -> None:
    for m in range(3):
        mem.dead_letters.write(letter(now, age=timedelta(minutes=m + 1)))
    code, out, err = run("dlq", "replay-all", "--error-type", "permanent")
    assert code == 0
    assert "[##############################] 3/3" in err
    assert "state" in out and "done" in out
    assert len(mem.enqueuer.sent) == 3


def test_purge(run: Run, mem: InMemoryApi, now: datetime) -> None:
    mem.dead_letters.write(letter(now, age=timedelta(days=8)))
    mem.dead_letters.write(letter(now, age=timedelta(days=1)))
    code, out, _ = run("-o", "json", "dlq", "purge", "--older-than", "7d")
    assert code == 0
    assert json.loads(out)["deleted_count"] == 1
    code, _, err = run("dlq", "purge", "--older-than", "a week")
    assert code == 1
    assert "older_than" in err


def test_purge_below_an_hour_needs_force(run: Run, mem: InMemoryApi, now: datetime) -> None:
    mem.dead_letters.write(letter(now, age=timedelta(minutes=10)))
    code, _, err = run("dlq", "purge", "--older-than", "5m")
    assert code == 1
    assert "force" in err
    assert mem.dead_letters.stats().total == 1
    code, out, _ = run("-o", "json", "dlq", "purge", "--older-than", "5m", "--dry-run")
    assert code == 0
    assert json.loads(out)["would_delete"] == 1
    assert mem.dead_letters.stats().total == 1
    code, out, _ = run("-o", "json", "dlq", "purge", "--older-than", "5m", "--force")
    assert code == 0
    assert json.loads(out)["deleted_count"] == 1
    assert mem.dead_letters.stats().total == 0


def test_breakers_and_reset(run: Run, mem: InMemoryApi) -> None:
    mem.breakers.record_failure("slack-ops", BreakerConfig(failure_threshold=1), None)
    code, out, _ = run("breakers")
    assert code == 0
    assert any(line.split()[:2] == ["slack-ops", "open"] for line in out.splitlines())
    code, out, _ = run("breakers", "reset", "slack-ops")
    assert code == 0
    assert "closed" in out
    assert mem.breakers.status("slack-ops").state.label == "closed"


def test_usage_errors_exit_2(run: Run) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("dlq", "purge")  # --older-than is required
    assert exit_info.value.code == 2


def test_jobs_state_takes_every_job_state(run: Run) -> None:
    code, out, _ = run("-o", "json", "jobs", "--state", JobState.SUPERSEDED.value)
    assert code == 0
    assert json.loads(out) == {"jobs": [], "total": 0}


def _choices(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_choices(sub, f"{prefix}{name} "))
        elif action.choices is not None:
            found[f"{prefix}{action.dest}"] = tuple(action.choices)
    return found


def test_every_choice_comes_from_the_domain_enums() -> None:
    priorities = tuple(p.value for p in Priority)
    error_types = tuple(e.value for e in ErrorType)
    choices = _choices(cli.build_parser())
    outputs = {k: v for k, v in choices.items() if k == "output" or k.endswith(" output")}
    assert set(outputs.values()) == {("table", "json")}
    assert {k: v for k, v in choices.items() if k not in outputs} == {
        "test-alert severity": tuple(s.value for s in Severity if s is not Severity.NOISE),
        "dlq list error_type": error_types,
        "dlq list priority": priorities,
        "dlq list replayed": ("true", "false"),
        "dlq replay-all error_type": error_types,
        "dlq replay-all priority": priorities,
        "jobs state": tuple(s.value for s in JobState),
        "jobs priority": priorities,
    }


@pytest.mark.parametrize(
    "argv",
    [
        ("jobs", "-o", "json"),
        ("dlq", "list", "-o", "json"),
        ("dlq", "stats", "--output", "json"),
        ("queue", "status", "-o", "json"),
        ("queue", "stats", "-o", "json"),
        ("breakers", "-o", "json"),
        ("targets", "list", "-o", "json"),
        ("-o", "json", "jobs"),
    ],
    ids=" ".join,
)
def test_output_json_is_taken_after_the_subcommand_too(run: Run, argv: tuple[str, ...]) -> None:
    code, out, err = run(*argv)
    assert code == 0, err
    json.loads(out)


def test_output_given_first_is_not_undone_by_the_subcommand(run: Run) -> None:
    code, out, _ = run("-o", "json", "queue", "status")
    assert code == 0
    assert set(json.loads(out)) == {"depth", "total"}


def test_queue_stats_is_a_table(run: Run, mem: InMemoryApi) -> None:
    run("test-alert", "ops-webhook")
    mem.breakers.record_failure("slack-ops", BreakerConfig(failure_threshold=1), None)
    code, out, _ = run("queue", "stats")
    assert code == 0
    assert not out.lstrip().startswith("{")
    lines = [line.split() for line in out.splitlines()]
    assert ["QUEUE", "DEPTH", "OLDEST_AGE_S"] in lines
    assert ["medium", "1", "-"] in lines or any(line[:2] == ["medium", "1"] for line in lines)
    assert ["TARGET", "BREAKER"] in lines
    assert ["slack-ops", "open"] in lines
    assert any(line[:2] == ["queued", "1"] for line in lines)


@pytest.mark.parametrize("argv", [("targets",), ("targets", "list")], ids=" ".join)
def test_targets_lists_name_type_enabled_breaker_and_success_rate(
    run: Run, mem: InMemoryApi, argv: tuple[str, ...]
) -> None:
    from publishing.target_health import HealthEvent

    mem.health.record("ops-webhook", [HealthEvent.SUCCESS], 100.0)
    mem.health.record("ops-webhook", [HealthEvent.FAILURE], 110.0)
    mem.breakers.record_failure("slack-ops", BreakerConfig(failure_threshold=1), None)
    code, out, _ = run(*argv)
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["NAME", "TYPE", "ENABLED", "BREAKER", "SUCCESS_RATE"]
    assert ["ops-webhook", "webhook", "True", "closed", "50%"] in lines
    assert ["slack-ops", "slack", "True", "open", "-"] in lines


def test_help_is_plain_text(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["targets", "--help"], ["dlq", "list", "--help"]):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(argv)
        shown = capsys.readouterr().out
        assert "``" not in shown and "`" not in shown, argv
    assert "var/api-token" in (cli.build_parser().description or "")


def test_dlq_list_wraps_the_error_message_so_its_reason_shows(
    run: Run, mem: InMemoryApi, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    reason = "routing_key is not a valid integration key (PD-4013)"
    long = f'PermanentPublishError: HTTP 400 from target \'ops-webhook\': {{"status": "invalid event", "message": "{reason}"}}'
    mem.dead_letters.write(dataclasses.replace(letter(now), error_message=long))
    code, out, _ = run("dlq", "list")
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 160 for line in lines)
    column = lines[0].index("ERROR_MESSAGE")
    shown = " ".join(line[column:].strip() for line in lines[1:-1])
    assert shown == " ".join(long.split())


def test_times_are_iso_8601_in_the_json_and_the_tables(run: Run, mem: InMemoryApi) -> None:
    run("test-alert", "ops-webhook")
    mem.breakers.record_failure("slack-ops", BreakerConfig(failure_threshold=1), None)
    [job] = json.loads(run("jobs", "-o", "json")[1])["jobs"]
    assert datetime.fromisoformat(job["submitted_at"]).utcoffset() == timedelta(0)
    _, out, _ = run("breakers")
    [opened] = [line.split()[-1] for line in out.splitlines() if line.startswith("slack-ops")]
    assert datetime.fromisoformat(opened).utcoffset() == timedelta(0)
