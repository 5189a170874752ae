"""Access (docs/design.md (API and access)): every endpoint's role, 401/403 in the error shape, no side effect from
a refused request, constant-time token lookup, no trust in local peers, and no start without tokens
unless the insecure development switch is set."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from api import create_app
from api.auth import Role, TokenTable
from api.testing import TOKENS, InMemoryApi, bearer, in_memory_api, settings_with_tokens
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter
from publishing.errors import ConfigError
from publishing.priority import Priority
from publishing.settings import Settings

TARGETS = [{"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}]
LETTER_ID = str(uuid.uuid4())
WEBHOOK = {
    "version": "4",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "severity": "critical"},
            "startsAt": "2026-01-01T00:00:00Z",
        }
    ],
}
ENRICHED = {
    "alert": {
        "alert_name": "DiskFull",
        "status": "firing",
        "labels": {"severity": "warning"},
        "starts_at": "2026-01-01T00:00:00Z",
    }
}

# (method, path, needed role, JSON body): every mutating endpoint of docs/design.md (API and access)
MUTATING: list[tuple[str, str, Role, Any]] = [
    ("POST", "/webhook", Role.OPERATOR, WEBHOOK),
    ("POST", "/api/v2/publishing/submit", Role.OPERATOR, ENRICHED),
    ("POST", f"/api/v2/publishing/dlq/{LETTER_ID}/replay", Role.ADMIN, None),
    ("POST", "/api/v2/publishing/dlq/replay", Role.ADMIN, {"dry_run": False}),
    ("DELETE", "/api/v2/publishing/dlq/purge?older_than=7d", Role.ADMIN, None),
    ("POST", "/api/v2/publishing/breakers/ops-webhook/reset", Role.ADMIN, None),
    ("POST", "/api/v2/publishing/targets/ops-webhook/test", Role.ADMIN, None),
]
READING = [
    "/api/v2/publishing/queue/status",
    "/api/v2/publishing/queue/stats",
    "/api/v2/publishing/jobs",
    "/api/v2/publishing/dlq",
    "/api/v2/publishing/dlq/stats",
    f"/api/v2/publishing/dlq/{LETTER_ID}",
    "/api/v2/publishing/targets",
    "/api/v2/publishing/breakers",
]
OPEN = ["/healthz", "/readyz", "/metrics", "/api/v2/openapi.json"]


def dead_letter() -> DeadLetter:
    return DeadLetter(
        id=LETTER_ID,
        job_id=str(uuid.uuid4()),
        fingerprint="fp-1",
        target_name="ops-webhook",
        target_type="webhook",
        enriched_alert={
            "alert": {
                "fingerprint": "fp-1",
                "alert_name": "DiskFull",
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "critical"},
                "annotations": {},
                "starts_at": "2023-01-01T00:00:00Z",
            }
        },
        target_config={"name": "ops-webhook"},
        error_message="HTTP 400",
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority.HIGH,
        failed_at=datetime(2023, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def mem() -> InMemoryApi:
    mem = in_memory_api(TARGETS)
    mem.dead_letters.write(dead_letter())
    return mem


@pytest.fixture
def app(mem: InMemoryApi) -> Flask:
    return create_app(settings_with_tokens(), mem.services)


def call(app: Flask, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return app.test_client().open(path, method=method, json=body, headers=headers or {})


def nothing_happened(mem: InMemoryApi) -> None:
    assert mem.enqueuer.sent == []
    assert mem.tracker.count_by_state() == dict.fromkeys(mem.tracker.count_by_state(), 0)
    assert mem.dead_letters.get(LETTER_ID).replayed is False
    assert mem.replay_runs.runs == {}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize(("method", "path", "role", "body"), MUTATING, ids=[m[1] for m in MUTATING])
class TestEveryMutatingEndpoint:
    def test_without_a_token_is_401_and_does_nothing(self, app, mem, method, path, role, body) -> None:
        response = call(app, method, path, body)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        nothing_happened(mem)

    def test_with_an_unknown_token_is_401(self, app, mem, method, path, role, body) -> None:
        headers = {"Authorization": "Bearer not-a-configured-token-at-all"}
        assert_error(call(app, method, path, body, headers), 401, "unauthorized")
        nothing_happened(mem)

    def test_with_a_basic_scheme_is_401(self, app, mem, method, path, role, body) -> None:
        headers = {"Authorization": f"Basic {TOKENS['admin']}"}
        assert_error(call(app, method, path, body, headers), 401, "unauthorized")
        nothing_happened(mem)

    def test_a_lower_role_is_403(self, app, mem, method, path, role, body) -> None:
        for lower in (r for r in Role if r < role):
            response = call(app, method, path, body, bearer(lower.name.lower()))
            error = assert_error(response, 403, "forbidden")
            assert error["details"] == {"required_role": role.name.lower(), "role": lower.name.lower()}
        nothing_happened(mem)

    def test_the_role_or_a_higher_one_succeeds(self, mem, method, path, role, body) -> None:
        for allowed in (r for r in Role if r >= role):
            fresh = in_memory_api(TARGETS)
            fresh.dead_letters.write(dead_letter())
            app = create_app(settings_with_tokens(), fresh.services)
            response = call(app, method, path, body, bearer(allowed.name.lower()))
            assert 200 <= response.status_code < 300, (allowed, response.get_json())


@pytest.mark.parametrize("path", READING)
def test_reading_needs_a_reader_token(app, path) -> None:
    assert_error(call(app, "GET", path), 401, "unauthorized")
    for role in ("reader", "operator", "admin"):
        assert call(app, "GET", path, headers=bearer(role)).status_code == 200, path


@pytest.mark.parametrize("path", OPEN)
def test_health_and_the_document_need_no_token(app, path) -> None:
    assert call(app, "GET", path).status_code == 200


def test_every_route_declares_its_role(app) -> None:
    unprotected = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "required_role"):
            unprotected.add(rule.rule)
    assert unprotected == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v2/openapi.json",
        "/static/<path:filename>",
    }


def test_the_token_table_checks_every_token() -> None:
    table = TokenTable({TOKENS["reader"]: "reader", TOKENS["admin"]: "admin"})
    assert table.role_of(TOKENS["admin"]) is Role.ADMIN
    assert table.role_of(TOKENS["reader"]) is Role.READER
    assert table.role_of(TOKENS["admin"][:-1]) is None
    assert table.role_of(TOKENS["admin"] + "x") is None
    assert table.role_of("") is None
    assert not TokenTable({})


class TestWithoutTokens:
    def test_the_app_refuses_to_start_without_tokens_or_the_switch(self, mem) -> None:
        with pytest.raises(ConfigError) as caught:
            create_app(Settings(), mem.services)
        message = str(caught.value)
        assert "PUBLISHING_API_TOKENS" in message and "PUBLISHING_INSECURE_NO_AUTH" in message
        assert "\n" not in message

    @pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
    def test_serve_refuses_to_start_without_tokens_or_the_switch(self, monkeypatch, capsys, host) -> None:
        from api.serve import main

        monkeypatch.delenv("PUBLISHING_API_TOKENS", raising=False)
        monkeypatch.delenv("PUBLISHING_INSECURE_NO_AUTH", raising=False)
        assert main(["--host", host, "--port", "0"]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert "PUBLISHING_API_TOKENS" in line and "PUBLISHING_INSECURE_NO_AUTH" in line


# 127.0.0.6 is where a sidecar proxy's traffic comes from; "" is a Unix-socket peer.
LOCAL_PEERS = ["127.0.0.1", "127.0.0.6", "::1", ""]


class TestInsecureSwitch:
    @pytest.fixture
    def open_app(self, mem: InMemoryApi, caplog: pytest.LogCaptureFixture) -> Flask:
        with caplog.at_level(logging.WARNING):
            app = create_app(Settings(insecure_no_auth=True), mem.services)
        (record,) = [r for r in caplog.records if "PUBLISHING_INSECURE_NO_AUTH" in r.getMessage()]
        assert record.levelno == logging.WARNING
        return app

    @pytest.mark.parametrize("address", [*LOCAL_PEERS, "10.1.2.3", "2001:db8::1"])
    def test_every_caller_is_admin(self, open_app, mem, address) -> None:
        client = open_app.test_client()
        environ = {"REMOTE_ADDR": address}
        response = client.post("/webhook", json=WEBHOOK, environ_base=environ)
        assert response.status_code == 202
        response = client.post(f"/api/v2/publishing/dlq/{LETTER_ID}/replay", environ_base=environ)
        assert response.status_code == 202
        assert len(mem.enqueuer.sent) == 2

    def test_readyz_says_auth_is_off(self, open_app) -> None:
        response = open_app.test_client().get("/readyz")
        assert (response.status_code, response.get_json()["auth"]) == (200, "off")

    def test_readyz_with_tokens_says_so(self, app) -> None:
        assert app.test_client().get("/readyz").get_json()["auth"] == "tokens"


class TestNoLoopbackTrust:
    @pytest.mark.parametrize("address", LOCAL_PEERS)
    def test_a_local_peer_without_a_token_is_401(self, app, mem, address) -> None:
        client = app.test_client()
        environ = {"REMOTE_ADDR": address}
        assert_error(client.post("/webhook", json=WEBHOOK, environ_base=environ), 401, "unauthorized")
        assert_error(client.get("/api/v2/publishing/jobs", environ_base=environ), 401, "unauthorized")
        assert mem.enqueuer.sent == []

    def test_with_tokens_any_address_may_call(self, app) -> None:
        response = app.test_client().get(
            "/api/v2/publishing/jobs", headers=bearer("reader"), environ_base={"REMOTE_ADDR": "10.1.2.3"}
        )
        assert response.status_code == 200
