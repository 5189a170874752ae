"""Jobs, queues, targets, breakers, health and the OpenAPI document (docs/design.md (API and access)) on in-memory
fakes, and the JSON error shape for everything werkzeug or our own code can raise."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from api import create_app
from api.testing import InMemoryApi, bearer, in_memory_api, settings_with_tokens
from publishing.breaker import BreakerConfig, BreakerState
from publishing.tracking import JobState

TARGETS = [
    {
        "name": "ops-webhook",
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "bearer_token": "t0ken-SECRET-1",
    },
    {"name": "slack-ops", "type": "slack", "url": "http://127.0.0.1:9/services/T0/B0/SLACKSECRET"},
    {
        "name": "pagerduty-prod",
        "type": "pagerduty",
        "url": "http://127.0.0.1:9/v2/enqueue",
        "routing_key": "R0UT1NGKEY-SECRET",
        "headers": {"X-Api-Key": "HEADERSECRET", "X-Team": "sre"},
    },
    {"name": "paused", "type": "webhook", "url": "http://127.0.0.1:9/paused", "enabled": False},
]
SECRETS = ("t0ken-SECRET-1", "SLACKSECRET", "R0UT1NGKEY-SECRET", "HEADERSECRET")
READER = bearer("reader")
ADMIN = bearer("admin")
API = "/api/v2/publishing"


@pytest.fixture
def mem() -> InMemoryApi:
    return in_memory_api(TARGETS)


@pytest.fixture
def app(mem: InMemoryApi) -> Flask:
    return create_app(settings_with_tokens(), mem.services)


def get(app: Flask, path: str) -> Any:
    return app.test_client().get(path, headers=READER)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


def submit(app: Flask, name: str, severity: str = "warning", status: str = "firing") -> list[dict[str, Any]]:
    alert = {
        "status": status,
        "labels": {"alertname": name, "severity": severity},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2026-01-01T01:00:00Z" if status == "resolved" else None,
    }
    response = app.test_client().post("/webhook", json={"alerts": [alert]}, headers=bearer("operator"))
    assert response.status_code == 202
    return response.get_json()["jobs"]


class TestJobs:
    def test_list_filters_and_limits_newest_first(self, app, mem) -> None:
        first = submit(app, "A", "critical")
        submit(app, "B", "warning")
        last = submit(app, "C", "info")
        mem.tracker.update(first[0]["id"], state=JobState.SUCCEEDED)

        body = get(app, f"{API}/jobs").get_json()
        assert body["total"] == 9
        assert body["jobs"][0]["id"] == last[-1]["id"]
        assert set(body["jobs"][0]) >= {
            "id", "fingerprint", "alert_name", "target", "priority", "state", "retry_count",
            "error_type", "last_error", "submitted_at", "started_at", "completed_at",
        }  # fmt: skip
        assert get(app, f"{API}/jobs?state=succeeded").get_json()["total"] == 1
        submitted_at = body["jobs"][0]["submitted_at"]
        assert datetime.fromisoformat(submitted_at).utcoffset() == timedelta(0), submitted_at
        one = get(app, f"{API}/jobs/{last[-1]['id']}").get_json()
        assert one["submitted_at"] == submitted_at
        assert get(app, f"{API}/jobs?priority=low").get_json()["total"] == 3
        assert get(app, f"{API}/jobs?target=slack-ops").get_json()["total"] == 3
        limited = get(app, f"{API}/jobs?limit=2").get_json()
        assert (len(limited["jobs"]), limited["total"]) == (2, 9)

    @pytest.mark.parametrize(
        ("query", "parameter"),
        [
            ("state=lost", "state"),
            ("priority=urgent", "priority"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
        ],
    )
    def test_a_bad_parameter_is_400_naming_it(self, app, query, parameter) -> None:
        error = error_of(get(app, f"{API}/jobs?{query}"), 400, "invalid_parameter")
        assert error["details"]["parameter"] == parameter

    def test_an_unknown_parameter_is_400_not_ignored(self, app) -> None:
        error = error_of(get(app, f"{API}/jobs?stat=failed"), 400, "invalid_parameter")
        assert error["details"]["parameter"] == "stat"
        assert error["details"]["allowed"] == ["limit", "priority", "state", "target"]
        error = error_of(get(app, f"{API}/targets?x=1"), 400, "invalid_parameter")
        assert "takes none" in error["message"]

    def test_one_job_or_404(self, app) -> None:
        (job, *_) = submit(app, "A")
        assert get(app, f"{API}/jobs/{job['id']}").get_json()["id"] == job["id"]
        error = error_of(get(app, f"{API}/jobs/no-such-job"), 404, "not_found")
        assert error["details"] == {"kind": "job", "id": "no-such-job"}


class TestQueue:
    def test_status_counts_by_priority(self, app) -> None:
        submit(app, "A", "critical")
        submit(app, "B", "info")
        body = get(app, f"{API}/queue/status").get_json()
        assert body == {"depth": {"high": 3, "medium": 0, "low": 3}, "total": 6}

    def test_stats(self, app, mem) -> None:
        submit(app, "A", "critical")
        mem.queues.oldest_age_s = 4.5
        mem.breakers.record_failure("slack-ops", BreakerConfig(failure_threshold=1), None)
        body = get(app, f"{API}/queue/stats").get_json()
        assert body["queues"]["high"] == {"depth": 3, "oldest_age_s": 4.5}
        assert body["queues"]["low"] == {"depth": 0, "oldest_age_s": None}
        assert body["total"] == 3
        assert body["workers"] == {"count": 1, "names": ["w1@test"]}
        assert body["jobs"]["submitted"] == 3
        assert body["jobs"]["by_state"]["queued"] == 3
        assert body["breakers"]["slack-ops"] == "open"
        assert body["breakers"]["ops-webhook"] == "closed"

    def test_stats_when_workers_cannot_be_asked(self, app, mem) -> None:
        mem.queues.worker_names = None
        assert get(app, f"{API}/queue/stats").get_json()["workers"] == {"count": None, "names": None}


class TestTargets:
    def test_list_is_redacted_with_breakers(self, app, mem) -> None:
        mem.breakers.record_failure("pagerduty-prod", BreakerConfig(failure_threshold=1), None)
        response = get(app, f"{API}/targets")
        for secret in SECRETS:
            assert secret not in response.get_data(as_text=True)
        targets = {t["name"]: t for t in response.get_json()["targets"]}
        assert set(targets) == {"ops-webhook", "slack-ops", "pagerduty-prod", "paused"}
        assert targets["pagerduty-prod"]["routing_key"] == "***"
        assert targets["pagerduty-prod"]["headers"] == {"X-Api-Key": "***", "X-Team": "sre"}
        assert targets["ops-webhook"]["bearer_token"] == "***"
        assert targets["slack-ops"]["url"].endswith("/***")
        assert targets["pagerduty-prod"]["breaker"]["state"] == "open"
        assert targets["ops-webhook"]["breaker"]["state"] == "closed"

    def test_a_test_alert_goes_through_the_submission_path(self, app, mem) -> None:
        response = app.test_client().post(f"{API}/targets/ops-webhook/test", headers=ADMIN)
        assert response.status_code == 202
        body = response.get_json()
        (job,) = mem.enqueuer.sent
        assert body["job_id"] == job.job_id
        assert (job.target, job.priority.value) == ("ops-webhook", "medium")
        assert job.alert.alert.alert_name == "PublishingTestAlert"
        assert body["fingerprint"].startswith("test-")
        assert mem.tracker.get(job.job_id).state is JobState.QUEUED

    def test_each_test_alert_is_its_own_notification(self, app, mem) -> None:
        client = app.test_client()
        for _ in range(2):
            client.post(f"{API}/targets/ops-webhook/test", json={"severity": "critical"}, headers=ADMIN)
        first, second = mem.enqueuer.sent
        assert first.alert.alert.fingerprint != second.alert.alert.fingerprint
        assert first.priority.value == "high"

    def test_unknown_disabled_and_bad_severity(self, app, mem) -> None:
        client = app.test_client()
        error = error_of(client.post(f"{API}/targets/nope/test", headers=ADMIN), 404, "not_found")
        assert error["details"] == {"kind": "target", "id": "nope"}
        error_of(client.post(f"{API}/targets/paused/test", headers=ADMIN), 409, "target_disabled")
        error = error_of(
            client.post(f"{API}/targets/ops-webhook/test", json={"severity": "loud"}, headers=ADMIN),
            422,
            "invalid_body",
        )
        assert error["details"]["problems"][0]["field"] == "severity"
        assert mem.enqueuer.sent == []


class TestBreakers:
    def test_list_and_reset(self, app, mem) -> None:
        mem.breakers.record_failure("slack-ops", BreakerConfig(failure_threshold=1), None)
        breakers = {b["target"]: b for b in get(app, f"{API}/breakers").get_json()["breakers"]}
        assert breakers["slack-ops"]["state"] == "open"
        assert breakers["slack-ops"]["trips"] == 1
        assert datetime.fromisoformat(breakers["slack-ops"]["opened_at"]).utcoffset() == timedelta(0)

        response = app.test_client().post(f"{API}/breakers/slack-ops/reset", headers=ADMIN)
        assert response.status_code == 200
        assert response.get_json()["state"] == "closed"
        assert mem.breakers.status("slack-ops").state is BreakerState.CLOSED

    def test_resetting_an_unknown_target_is_404(self, app) -> None:
        error = error_of(
            app.test_client().post(f"{API}/breakers/nope/reset", headers=ADMIN), 404, "not_found"
        )
        assert error["details"] == {"kind": "target", "id": "nope"}


class TestHealth:
    def test_healthz(self, app) -> None:
        assert app.test_client().get("/healthz").get_json() == {"status": "ok"}

    def test_readyz(self, app) -> None:
        response = app.test_client().get("/readyz")
        assert (response.status_code, response.get_json()) == (
            200,
            {"redis": "ok", "database": "ok", "auth": "tokens"},
        )

    @pytest.mark.parametrize("down", [["redis"], ["database"], ["redis", "database"]])
    def test_readyz_names_what_is_down(self, app, mem, down) -> None:
        for name in down:
            mem.readiness.checks[name] = "down: ConnectionError"
        error = error_of(app.test_client().get("/readyz"), 503, "not_ready")
        for name in down:
            assert name in error["message"]
            assert error["details"][name].startswith("down")


class TestErrors:
    def test_an_unknown_path_is_404_json(self, app) -> None:
        error = error_of(app.test_client().get("/nope"), 404, "not_found")
        assert "/nope" in error["message"]
        assert error["details"] == {"kind": "route", "path": "/nope"}

    def test_a_wrong_method_is_405_json_with_allow(self, app) -> None:
        response = app.test_client().put("/webhook")
        error = error_of(response, 405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]
        assert "POST" in error["details"]["allowed_methods"]

    def test_an_unexpected_error_is_500_json_and_logged(self, app, mem, monkeypatch, caplog) -> None:
        def broken(*args: Any) -> Any:
            raise RuntimeError("boom")

        monkeypatch.setattr(mem.tracker, "list", broken)
        error = error_of(get(app, f"{API}/jobs"), 500, "internal_error")
        assert "boom" not in error["message"]
        assert "unhandled error" in caplog.text


class TestOpenApi:
    def test_the_document_describes_every_route_and_nothing_else(self, app) -> None:
        document = app.test_client().get("/api/v2/openapi.json").get_json()
        assert document["openapi"].startswith("3.")
        assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
        documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
        served = {
            (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
        # Path parameters are named for what they are in the document ({id}), by Python names in routes.
        normalise = lambda pairs: {(re.sub(r"\{\w+\}", "{}", p), m) for p, m in pairs}  # noqa: E731
        assert normalise(documented) == normalise(served)

    def test_protected_operations_declare_401_and_403_and_open_ones_no_security(self, app) -> None:
        document = app.test_client().get("/api/v2/openapi.json").get_json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if path in ("/healthz", "/readyz", "/metrics", "/api/v2/openapi.json"):
                    assert operation["security"] == [], path
                else:
                    assert {"401", "403"} <= set(operation["responses"]), (path, method)


def test_metrics_need_no_token_and_count_submissions(mem: InMemoryApi) -> None:
    from publishing.adapters import metrics

    mem.services.observe_submission = metrics.observe_submission
    app = create_app(settings_with_tokens(), mem.services)
    client = app.test_client()
    before = client.get("/metrics")
    payload = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "Scraped", "severity": "critical"},
             "startsAt": "2026-11-28T10:00:00Z"}
        ],
    }  # fmt: skip
    assert client.post("/webhook", json=payload, headers=bearer("operator")).status_code == 202
    after = client.get("/metrics")

    assert before.status_code == after.status_code == 200
    assert after.mimetype == "text/plain"
    name = 'alert_history_publishing_queue_submissions_total{priority="high",result="accepted"}'

    def count(text: str) -> float:
        line = next((line for line in text.splitlines() if line.startswith(name)), f"{name} 0")
        return float(line.rsplit(" ", 1)[1])

    assert count(after.get_data(as_text=True)) - count(before.get_data(as_text=True)) >= 1
    assert not any(secret in after.get_data(as_text=True) for secret in SECRETS)


def test_one_target_shows_its_health_with_secrets_redacted(app: Flask, mem: InMemoryApi) -> None:
    from publishing.target_health import HealthEvent

    mem.health.record("pagerduty-prod", [HealthEvent.SUCCESS], 100.0)
    mem.health.record(
        "pagerduty-prod", [HealthEvent.FAILURE, HealthEvent.TRIPPED], 200.0, "HTTP 503 from ***"
    )
    mem.health.record("pagerduty-prod", [HealthEvent.PAUSED], 210.0)
    mem.health.record("pagerduty-prod", [HealthEvent.SUCCESS, HealthEvent.RECOVERED], 300.0)

    response = get(app, f"{API}/targets/pagerduty-prod")
    assert response.status_code == 200
    body = response.get_json()
    health = body["health"]
    assert health["successes"] == 2
    assert health["failures"] == 1
    assert health["success_rate"] == pytest.approx(2 / 3)
    assert health["last_success_at"] == "1970-01-01T00:05:00+00:00"
    assert (health["last_failure_at"], health["last_error"]) == (
        "1970-01-01T00:03:20+00:00",
        "HTTP 503 from ***",
    )
    assert health["pauses"] == 1
    assert [h["event"] for h in health["breaker_history"]] == ["recovered", "tripped"]
    assert [h["at"] for h in health["breaker_history"]] == [
        "1970-01-01T00:05:00+00:00",
        "1970-01-01T00:03:20+00:00",
    ]
    assert body["breaker"]["state"] == "closed"
    assert body["routing_key"] == "***"
    assert not any(secret in response.get_data(as_text=True) for secret in SECRETS)


def test_an_unknown_target_is_404_naming_it(app: Flask) -> None:
    body = error_of(get(app, f"{API}/targets/no-such-target"), 404, "not_found")
    assert body["details"] == {"kind": "target", "id": "no-such-target"}
    assert "no-such-target" in body["message"]
