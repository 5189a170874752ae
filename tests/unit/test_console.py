"""The operator console (api/ui) over the in-memory fakes: sign-in and its cookie, CSRF on
every state-changing form, the roles of each action (the JSON API's own), and every page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app, dlq
from api.auth import Role
from api.testing import TOKENS, InMemoryApi, in_memory_api, settings_with_tokens
from api.ui import session as console_session
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter
from publishing.errors import ConfigError
from publishing.priority import Priority
from publishing.settings import Settings
from publishing.target_health import HealthEvent
from publishing.tracking import JobSnapshot, JobState

SECRET_PATH = "services/T000/B000/XXXXXXXXXXXXXXXXXXXX"
TARGETS = [
    {"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook", "fallback": ["slack-ops"]},
    {"name": "slack-ops", "type": "slack", "url": f"http://127.0.0.1:9/{SECRET_PATH}"},
]
PAGES = ["/ui/", "/ui/dlq", "/ui/jobs", "/ui/targets", "/ui/targets/ops-webhook", "/ui/overview/workers"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def letter(mem: InMemoryApi, *, target: str = "ops-webhook", **overrides: Any) -> DeadLetter:
    now = datetime.fromtimestamp(mem.clock(), UTC)
    fingerprint = uuid.uuid4().hex[:16]
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_id": str(uuid.uuid4()),
        "fingerprint": fingerprint,
        "target_name": target,
        "target_type": "webhook",
        "enriched_alert": {
            "alert": {
                "fingerprint": fingerprint,
                "alert_name": "DiskFull",
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "critical"},
                "annotations": {"hook": f"see http://127.0.0.1:9/{SECRET_PATH}"},
                "starts_at": "2023-01-01T00:00:00Z",
                "ends_at": None,
                "generator_url": "",
            },
            "classification": None,
            "enrichment_metadata": {},
        },
        "target_config": {"name": target, "type": "webhook"},
        "error_message": "PermanentPublishError: HTTP 410",
        "error_type": ErrorType.PERMANENT,
        "retry_count": 2,
        "priority": Priority.HIGH,
        "failed_at": now - timedelta(hours=2),
        **overrides,
    }
    row = DeadLetter(**values)
    mem.dead_letters.write(row)
    return row


@pytest.fixture
def mem() -> InMemoryApi:
    return in_memory_api(TARGETS)


@pytest.fixture
def app(mem: InMemoryApi) -> Flask:
    return create_app(settings_with_tokens(), mem.services)


def csrf_of(client: FlaskClient, path: str = "/ui/login") -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def signed_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/ui/login", data={"csrf_token": csrf_of(client), "token": TOKENS[role]})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def test_pages_need_a_sign_in_and_come_back_after_it(app: Flask) -> None:
    client = app.test_client()
    answer = client.get("/ui/dlq?target=ops-webhook")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/ui/login?next=/ui/dlq?target%3Dops-webhook"
    back = client.post(
        "/ui/login",
        data={"csrf_token": csrf_of(client), "token": TOKENS["reader"], "next": "/ui/dlq?target=ops-webhook"},
    )
    assert back.headers["Location"] == "/ui/dlq?target=ops-webhook"


@pytest.mark.parametrize("next_", ["https://evil.example/", "//evil.example/ui/", "/api/v2/publishing/dlq"])
def test_sign_in_goes_nowhere_outside_the_console(app: Flask, next_: str) -> None:
    client = app.test_client()
    answer = client.post(
        "/ui/login", data={"csrf_token": csrf_of(client), "token": TOKENS["reader"], "next": next_}
    )
    assert answer.headers["Location"] == "/ui/"


def test_a_wrong_token_is_refused_and_signs_nobody_in(app: Flask) -> None:
    client = app.test_client()
    answer = client.post("/ui/login", data={"csrf_token": csrf_of(client), "token": "not-a-token-at-all"})
    assert answer.status_code == 401
    assert "That token is not valid." in answer.get_data(as_text=True)
    assert client.get("/ui/").status_code == 302


def test_the_session_cookie_is_httponly_strict_scoped_and_holds_no_token(app: Flask) -> None:
    client = app.test_client()
    csrf = csrf_of(client)
    answer = client.post("/ui/login", data={"csrf_token": csrf, "token": TOKENS["admin"]})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    console = app.extensions["publishing.ui"]
    payload = console.session_interface.get_signing_serializer(console).loads(value)
    assert payload["role"] == "admin"
    assert TOKENS["admin"] not in str(payload)
    assert payload["csrf_token"] != csrf  # a new session at sign-in


def test_over_https_the_cookie_is_secure(app: Flask) -> None:
    client = app.test_client()
    answer = client.get("/ui/login", base_url="https://console.example")
    assert "; Secure" in answer.headers["Set-Cookie"]


def test_sign_out_ends_the_session(app: Flask) -> None:
    client = signed_in(app, "reader")
    assert client.post("/ui/logout", data={"csrf_token": csrf_of(client, "/ui/")}).status_code == 302
    assert client.get("/ui/").status_code == 302


def test_a_session_ends_when_its_token_is_removed(mem: InMemoryApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHING_UI_SECRET", "s" * 40)
    client = signed_in(create_app(settings_with_tokens(), mem.services), "reader")
    fewer = Settings(api_tokens={TOKENS["admin"]: "admin"})
    restarted = create_app(fewer, mem.services)
    cookie = client.get_cookie("publishing_console", path="/ui")
    assert cookie is not None
    other = restarted.test_client()
    other.set_cookie("publishing_console", cookie.value, path="/ui")
    assert other.get("/ui/").status_code == 302


@pytest.mark.parametrize(
    "path",
    ["/ui/login", "/ui/logout", "/ui/dlq/replay", "/ui/dlq/replay-selected", "/ui/dlq/purge"],
)
def test_every_post_without_the_csrf_token_is_400(app: Flask, path: str) -> None:
    client = signed_in(app, "admin")
    assert client.post(path, data={"token": TOKENS["admin"]}).status_code == 400
    assert client.post(path, data={"csrf_token": "forged", "token": TOKENS["admin"]}).status_code == 400


def test_a_replay_without_the_csrf_token_changes_nothing(app: Flask, mem: InMemoryApi) -> None:
    row = letter(mem)
    client = signed_in(app, "admin")
    assert client.post(f"/ui/dlq/{row.id}/replay").status_code == 400
    assert not mem.dead_letters.get(row.id).replayed


@pytest.mark.parametrize("role", ["reader", "operator", "admin"])
@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_every_role(app: Flask, mem: InMemoryApi, role: str, path: str) -> None:
    letter(mem)
    answer = signed_in(app, role).get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_the_console_asks_the_roles_the_api_asks() -> None:
    # Replay and purge are admin actions in the JSON API (api/dlq.py), so they are in the console.
    assert dlq.replay_one.required_role is Role.ADMIN  # type: ignore[attr-defined]
    assert dlq.replay_many.required_role is Role.ADMIN  # type: ignore[attr-defined]
    assert dlq.purge.required_role is Role.ADMIN  # type: ignore[attr-defined]


@pytest.mark.parametrize(("role", "allowed"), [("reader", False), ("operator", False), ("admin", True)])
def test_replay_and_purge_need_the_api_role(app: Flask, mem: InMemoryApi, role: str, allowed: bool) -> None:
    row = letter(mem)
    client = signed_in(app, role)
    page = client.get("/ui/dlq").get_data(as_text=True)
    assert ("Replay selected" in page) is allowed
    assert ('id="purge"' in page) is allowed
    token = csrf_of(client, "/ui/dlq")
    answers = [
        client.post(f"/ui/dlq/{row.id}/replay", data={"csrf_token": token}),
        client.post("/ui/dlq/replay", data={"csrf_token": token, "dry_run": "1"}),
        client.post("/ui/dlq/purge", data={"csrf_token": token, "older_than": "1h", "dry_run": "1"}),
    ]
    assert all((a.status_code != 403) is allowed for a in answers), [a.status_code for a in answers]
    assert mem.dead_letters.get(row.id).replayed is allowed


def test_without_tokens_no_sign_in_is_needed_but_forms_still_need_csrf(mem: InMemoryApi) -> None:
    app = create_app(Settings(insecure_no_auth=True), mem.services)
    client = app.test_client()
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    row = letter(mem)
    assert client.post(f"/ui/dlq/{row.id}/replay").status_code == 400
    token = csrf_of(client, "/ui/dlq")
    assert client.post(f"/ui/dlq/{row.id}/replay", data={"csrf_token": token}).status_code == 302
    assert mem.dead_letters.get(row.id).replayed


def test_the_dlq_filters_and_pages(app: Flask, mem: InMemoryApi) -> None:
    kept = letter(mem, error_type=ErrorType.TRANSIENT)
    other = letter(mem, target="slack-ops")
    client = signed_in(app, "reader")
    page = client.get("/ui/dlq?target=ops-webhook&error_type=transient&replayed=false").get_data(as_text=True)
    assert kept.id in page and other.id not in page
    assert "1 matching" in page
    since = (datetime.fromtimestamp(mem.clock(), UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert kept.id not in client.get(f"/ui/dlq?failed_after={since}").get_data(as_text=True)
    for _ in range(30):
        letter(mem)
    first = client.get("/ui/dlq?limit=25").get_data(as_text=True)
    assert first.count('data-id="') == 25 and 'rel="next"' in first
    second = client.get("/ui/dlq?limit=25&offset=25").get_data(as_text=True)
    assert second.count('data-id="') == 7 and 'rel="prev"' in second


def test_a_bad_filter_says_so(app: Flask) -> None:
    answer = signed_in(app, "reader").get("/ui/dlq?priority=urgent")
    assert answer.status_code == 400
    assert "must be one of high|medium|low" in answer.get_data(as_text=True)


def test_a_rows_detail_shows_the_alert_redacted(app: Flask, mem: InMemoryApi) -> None:
    row = letter(mem, target="slack-ops")
    page = signed_in(app, "reader").get(f"/ui/dlq/{row.id}").get_data(as_text=True)
    assert "DiskFull" in page and "HTTP 410" in page
    assert SECRET_PATH not in page
    assert "http://127.0.0.1:9/***" in page


def test_replay_one_then_again(app: Flask, mem: InMemoryApi) -> None:
    row = letter(mem)
    client = signed_in(app, "admin")
    token = csrf_of(client, "/ui/dlq")
    client.post(f"/ui/dlq/{row.id}/replay", data={"csrf_token": token})
    replayed = mem.dead_letters.get(row.id)
    assert replayed.replayed and mem.tracker.get(str(replayed.replay_job_id)) is not None
    again = client.post(f"/ui/dlq/{row.id}/replay", data={"csrf_token": token}, follow_redirects=True)
    assert "was already replayed" in again.get_data(as_text=True)


def test_replay_the_selected_rows(app: Flask, mem: InMemoryApi) -> None:
    rows = [letter(mem) for _ in range(3)]
    client = signed_in(app, "admin")
    token = csrf_of(client, "/ui/dlq")
    answer = client.post(
        "/ui/dlq/replay-selected",
        data={"csrf_token": token, "ids": [rows[0].id, rows[1].id]},
        follow_redirects=True,
    )
    assert "2 of 2 selected rows replayed." in answer.get_data(as_text=True)
    assert [mem.dead_letters.get(r.id).replayed for r in rows] == [True, True, False]
    bad = client.post("/ui/dlq/replay-selected", data={"csrf_token": token, "ids": ["x"]})
    assert bad.status_code == 400


def test_bulk_replay_dry_run_then_run_with_progress(app: Flask, mem: InMemoryApi) -> None:
    rows = [letter(mem) for _ in range(3)] + [letter(mem, target="slack-ops")]
    client = signed_in(app, "admin")
    token = csrf_of(client, "/ui/dlq")
    dry = client.post("/ui/dlq/replay", data={"csrf_token": token, "dry_run": "1", "target": "ops-webhook"})
    assert '<span id="run-total">3</span>' in dry.get_data(as_text=True)
    assert not any(mem.dead_letters.get(r.id).replayed for r in rows)
    run = client.post("/ui/dlq/replay", data={"csrf_token": token, "dry_run": "0", "target": "ops-webhook"})
    assert run.status_code == 302 and run.headers["Location"].startswith("/ui/dlq/runs/")
    progress = client.get(run.headers["Location"]).get_data(as_text=True)
    assert "3 replayed" in progress and "done" in progress
    assert [mem.dead_letters.get(r.id).replayed for r in rows] == [True, True, True, False]


def test_purge_under_an_hour_needs_force(app: Flask, mem: InMemoryApi) -> None:
    row = letter(mem, failed_at=datetime.fromtimestamp(mem.clock(), UTC) - timedelta(minutes=10))
    client = signed_in(app, "admin")
    token = csrf_of(client, "/ui/dlq")
    refused = client.post(
        "/ui/dlq/purge", data={"csrf_token": token, "older_than": "5m"}, follow_redirects=True
    )
    assert "tick &#39;force&#39;" in refused.get_data(as_text=True)
    assert mem.dead_letters.read(DLQFilter())[1] == 1
    client.post("/ui/dlq/purge", data={"csrf_token": token, "older_than": "5m", "force": "1"})
    assert mem.dead_letters.read(DLQFilter())[1] == 0
    assert row.id


def track(mem: InMemoryApi, name: str, fingerprint: str, state: JobState = JobState.SUCCEEDED) -> JobSnapshot:
    now = mem.clock()
    job = JobSnapshot(
        id=str(uuid.uuid4()),
        fingerprint=fingerprint,
        alert_name=name,
        target="ops-webhook",
        priority=Priority.HIGH,
        state=state,
        submitted_at=now - 10,
        started_at=now - 9,
        completed_at=now - 8.5 if state is JobState.SUCCEEDED else None,
    )
    mem.tracker.record(job)
    return job


def test_jobs_are_found_by_id_alert_name_or_fingerprint(app: Flask, mem: InMemoryApi) -> None:
    disk = track(mem, "DiskFull", "fp-disk-0001")
    cpu = track(mem, "CpuHot", "fp-cpu-0002", JobState.RETRYING)
    client = signed_in(app, "reader")
    by_id = client.get(f"/ui/jobs?q={disk.id}")
    assert by_id.headers["Location"] == f"/ui/jobs/{disk.id}"
    by_name = client.get("/ui/jobs?q=diskf").get_data(as_text=True)
    assert disk.id in by_name and cpu.id not in by_name
    by_fingerprint = client.get("/ui/jobs?q=fp-cpu").get_data(as_text=True)
    assert cpu.id in by_fingerprint and disk.id not in by_fingerprint
    by_state = client.get("/ui/jobs?state=retrying").get_data(as_text=True)
    assert cpu.id in by_state and disk.id not in by_state
    page = client.get(f"/ui/jobs/{disk.id}").get_data(as_text=True)
    assert 'id="job-state">succeeded' in page and "+1s" in page
    assert client.get("/ui/jobs/no-such-job").status_code == 404


def test_targets_show_breaker_history_health_and_fallback(app: Flask, mem: InMemoryApi) -> None:
    now = mem.clock()
    mem.health.record("ops-webhook", [HealthEvent.FAILURE, HealthEvent.TRIPPED], now - 60, "HTTP 503")
    mem.health.record("ops-webhook", [HealthEvent.SUCCESS, HealthEvent.RECOVERED], now - 5)
    mem.health.record("ops-webhook", [HealthEvent.PAUSED], now - 4)
    client = signed_in(app, "reader")
    listing = client.get("/ui/targets").get_data(as_text=True)
    assert "slack-ops" in listing and SECRET_PATH not in listing
    detail = client.get("/ui/targets/ops-webhook").get_data(as_text=True)
    assert "tripped" in detail and "recovered" in detail and "HTTP 503" in detail
    assert "slack-ops after 1m" in detail
    assert client.get("/ui/targets/nope").status_code == 404


def test_the_overview_shows_queues_workers_jobs_and_the_dlq(app: Flask, mem: InMemoryApi) -> None:
    letter(mem)
    track(mem, "DiskFull", "fp-1")
    page = signed_in(app, "reader").get("/ui/").get_data(as_text=True)
    assert "w1@test" not in page  # workers are pinged apart (a ping waits out its timeout)
    assert 'data-fragment="/ui/overview/workers"' in page
    workers = signed_in(app, "reader").get("/ui/overview/workers").get_data(as_text=True)
    assert "w1@test" in workers
    assert "w1@test" in signed_in(app, "reader").get("/ui/").get_data(as_text=True)  # now recent


def test_the_ui_secret_setting() -> None:
    settings = settings_with_tokens()
    derived = console_session.console_secret(settings, {})
    assert derived == console_session.console_secret(settings_with_tokens(), {})
    assert derived != console_session.console_secret(Settings(api_tokens={"x" * 20: "reader"}), {})
    chosen = console_session.console_secret(settings, {"PUBLISHING_UI_SECRET": "k" * 32})
    assert chosen != derived
    with pytest.raises(ConfigError, match="at least 32"):
        console_session.console_secret(settings, {"PUBLISHING_UI_SECRET": "short"})
    with pytest.raises(ConfigError, match="not both"):
        console_session.console_secret(
            settings, {"PUBLISHING_UI_SECRET": "k" * 32, "PUBLISHING_UI_SECRET_FILE": "/x"}
        )


def test_api_errors_stay_json_beside_the_console(app: Flask) -> None:
    answer = app.test_client().get("/api/v2/publishing/nothing")
    assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"
    assert app.test_client().get("/ui/nothing").mimetype == "text/html"
