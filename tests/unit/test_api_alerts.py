"""Alerts in through the API (docs/design.md (Priority); docs/design.md (Job states); docs/design.md (API and access)): jobs, de-duplication, routing by name, and
every way a request is refused whole — with the error shape and without creating any job."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from flask import Flask

from api import create_app
from api.testing import InMemoryApi, bearer, in_memory_api, settings_with_tokens
from publishing.job import Job
from publishing.tracking import JobQuery

TARGETS = [
    {"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
    {"name": "slack-ops", "type": "slack", "url": "http://127.0.0.1:9/services/T0/B0/SECRET"},
    {
        "name": "pagerduty-critical",
        "type": "pagerduty",
        "url": "http://127.0.0.1:9/v2/enqueue",
        "routing_key": "R0UT1NGKEY-0001",
        "filter": {"severity": ["critical"]},
    },
]
OPERATOR = bearer("operator")


def am_alert(name: str = "DiskFull", severity: str = "critical", **overrides: Any) -> dict[str, Any]:
    alert = {
        "status": "firing",
        "labels": {"alertname": name, "severity": severity, "instance": "db-1"},
        "annotations": {"summary": f"{name} is happening"},
        "startsAt": "2026-11-28T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.local/graph",
    }
    alert.update(overrides)
    return alert


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "receiver": "publishing", "status": "firing", "alerts": list(alerts)}


def enriched(name: str = "CpuHot", severity: str = "warning", **alert: Any) -> dict[str, Any]:
    return {
        "alert": {
            "alert_name": name,
            "status": "firing",
            "labels": {"severity": severity},
            "annotations": {},
            "starts_at": "2026-11-28T10:00:00Z",
            **alert,
        },
        "classification": {"severity": severity, "confidence": 0.9, "reasoning": "", "recommendations": []},
    }


@pytest.fixture
def mem() -> InMemoryApi:
    return in_memory_api(TARGETS)


@pytest.fixture
def app(mem: InMemoryApi) -> Flask:
    return create_app(settings_with_tokens(), mem.services)


def post(app: Flask, path: str, body: Any = None, *, data: str | bytes | None = None) -> Any:
    client = app.test_client()
    if data is not None:
        return client.post(path, data=data, headers=OPERATOR, content_type="application/json")
    return client.post(path, json=body, headers=OPERATOR)


def nothing_enqueued(mem: InMemoryApi) -> None:
    assert mem.enqueuer.sent == []
    jobs, total = mem.tracker.list(JobQuery())
    assert (jobs, total) == ([], 0)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


class TestWebhook:
    def test_two_alerts_to_matching_targets_make_one_job_each(self, app, mem) -> None:
        response = post(
            app, "/webhook", webhook(am_alert("DiskFull"), am_alert("CpuHot", severity="warning"))
        )
        assert response.status_code == 202
        body = response.get_json()
        # The critical alert goes to all three targets, the warning one to the two without a filter.
        assert len(body["jobs"]) == 5
        assert body["unrouted"] == []
        assert {j["priority"] for j in body["jobs"]} == {"high", "medium"}
        assert all(set(j) == {"id", "fingerprint", "target", "priority", "duplicate"} for j in body["jobs"])
        assert [j.job_id for j in mem.enqueuer.sent] == [j["id"] for j in body["jobs"]]
        assert mem.observed and mem.observed[0].jobs

    def test_each_job_carries_the_envelope_its_alert_came_in(self, app, mem) -> None:
        payload = {**webhook(am_alert("DiskFull")), "externalURL": "https://am.example.com"}
        assert post(app, "/webhook", payload).status_code == 202
        carried = [Job.from_message(json.loads(json.dumps(j.to_message()))) for j in mem.enqueuer.sent]
        assert carried and all(
            j.alert.envelope == {"receiver": "publishing", "externalURL": "https://am.example.com"}
            for j in carried
        )

    def test_the_same_payload_again_is_answered_with_the_same_ids(self, app, mem) -> None:
        payload = webhook(am_alert("DiskFull"))
        first = post(app, "/webhook", payload).get_json()["jobs"]
        second = post(app, "/webhook", payload).get_json()["jobs"]
        assert [j["id"] for j in second] == [j["id"] for j in first]
        assert all(j["duplicate"] for j in second)
        assert len(mem.enqueuer.sent) == len(first)

    def test_an_alert_no_target_selects_is_unrouted(self, mem) -> None:
        only_critical = in_memory_api([TARGETS[2]])
        app = create_app(settings_with_tokens(), only_critical.services)
        alert = am_alert("Quiet", severity="info", fingerprint="fp-quiet")
        body = post(app, "/webhook", webhook(alert)).get_json()
        assert body == {"jobs": [], "unrouted": ["fp-quiet"]}

    def test_malformed_json_is_400(self, app, mem) -> None:
        error = error_of(post(app, "/webhook", data='{"alerts": [}'), 400, "malformed_json")
        assert "not valid JSON" in error["message"]
        nothing_enqueued(mem)

    def test_an_empty_body_is_400(self, app, mem) -> None:
        error_of(post(app, "/webhook", data=""), 400, "malformed_json")
        nothing_enqueued(mem)

    def test_deeply_nested_json_is_400_not_a_crash(self, app, mem) -> None:
        error_of(post(app, "/webhook", data="[" * 100_000 + "]" * 100_000), 400, "malformed_json")
        nothing_enqueued(mem)

    def test_a_body_over_the_cap_is_413(self, app, mem) -> None:
        big = json.dumps(webhook(am_alert(annotations={"blob": "x" * (2 * 1024 * 1024)})))
        error = error_of(post(app, "/webhook", data=big), 413, "payload_too_large")
        assert error["details"]["max_body_bytes"] == 1_048_576
        nothing_enqueued(mem)

    def test_more_alerts_than_allowed_is_413_naming_the_count(self, app, mem) -> None:
        minimal = {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}
        body = json.dumps(webhook(*[minimal] * 10_001))
        assert len(body) < 1_048_576  # the count is what is refused, not the size
        error = error_of(post(app, "/webhook", data=body), 413, "too_many_alerts")
        assert "10001" in error["message"]
        assert error["details"] == {"count": 10_001, "max_alerts": 1000}
        nothing_enqueued(mem)
        assert ("rejected", 1) in mem.observed

    def test_the_alert_cap_follows_the_settings(self, mem) -> None:
        app = create_app(settings_with_tokens(max_alerts_per_request=2), mem.services)
        error = error_of(
            post(app, "/webhook", webhook(*[am_alert(f"A{i}") for i in range(3)])), 413, "too_many_alerts"
        )
        assert error["details"]["count"] == 3
        assert post(app, "/webhook", webhook(am_alert("A0"), am_alert("A1"))).status_code == 202

    @pytest.mark.parametrize(
        ("alert", "field"),
        [
            (am_alert(labels={"severity": "critical"}), "alerts[0].labels.alertname"),
            (am_alert(status="burning"), "alerts[0].status"),
            (am_alert(status=1), "alerts[0].status"),
            (am_alert(labels=["alertname", "x"]), "alerts[0].labels"),
            (am_alert(labels={"alertname": "X", "n": 5}), "alerts[0].labels.n"),
            (am_alert(startsAt="yesterday"), "alerts[0].startsAt"),
            (am_alert(startsAt=None), "alerts[0].startsAt"),
            (am_alert(startsAt=20260101), "alerts[0].startsAt"),
            (am_alert(endsAt="2026-11-28T09:00:00Z"), "alerts[0].endsAt"),
            (am_alert(fingerprint=""), "alerts[0].fingerprint"),
            ("not an object", "alerts[0]"),
        ],
    )
    def test_an_invalid_alert_is_422_naming_the_field(self, app, mem, alert, field) -> None:
        error = error_of(post(app, "/webhook", webhook(alert)), 422, "invalid_alert")
        assert field in [p["field"] for p in error["details"]["problems"]]
        assert field in error["message"]
        nothing_enqueued(mem)

    def test_one_invalid_alert_rejects_the_whole_request(self, app, mem) -> None:
        payload = webhook(am_alert("Good"), am_alert(labels={}), am_alert("AlsoGood"))
        error = error_of(post(app, "/webhook", payload), 422, "invalid_alert")
        assert [p["field"] for p in error["details"]["problems"]] == ["alerts[1].labels.alertname"]
        nothing_enqueued(mem)

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"version": "3", "alerts": [am_alert()]}, "version"),
            ({"alerts": "many"}, "alerts"),
            ({"alerts": []}, "alerts"),
            ({}, "alerts"),
            ([am_alert()], "$"),
            ("text", "$"),
        ],
    )
    def test_a_wrong_envelope_is_422(self, app, mem, payload, field) -> None:
        error = error_of(post(app, "/webhook", payload), 422, "invalid_alert")
        assert error["details"]["problems"][0]["field"] == field
        nothing_enqueued(mem)

    def test_redis_down_is_503_naming_redis(self, app, mem, monkeypatch) -> None:
        def down(*args: Any) -> None:
            raise redis.ConnectionError("Connection refused")

        monkeypatch.setattr(mem.tracker, "record", down)
        error = error_of(post(app, "/webhook", webhook(am_alert())), 503, "dependency_unavailable")
        assert error["details"]["dependency"] == "redis"
        assert mem.enqueuer.sent == []

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:s3cret@redis.internal:6380/0", "redis.internal:6380"),
            ("rediss://user:s3cret@cache.example.com/2", "cache.example.com:6379"),
            ("sentinel://:s3cret@h1:26379;sentinel://h2:26379", "h1:26379, h2:26379"),
        ],
    )
    def test_redis_down_names_which_redis_and_never_its_password(self, mem, monkeypatch, url, shown) -> None:
        def down(*args: Any) -> None:
            raise redis.ConnectionError("Connection refused")

        monkeypatch.setattr(mem.tracker, "record", down)
        app = create_app(settings_with_tokens(redis_url=url), mem.services)
        response = post(app, "/webhook", webhook(am_alert()))
        error = error_of(response, 503, "dependency_unavailable")
        assert shown in error["message"]
        assert error["details"]["at"] == shown
        assert "s3cret" not in response.get_data(as_text=True)


class TestSubmit:
    PATH = "/api/v2/publishing/submit"

    @pytest.mark.parametrize(
        "payload",
        [enriched(), [enriched()], {"alerts": [enriched()]}],
        ids=["one", "list", "alerts"],
    )
    def test_every_shape_is_accepted(self, app, mem, payload) -> None:
        response = post(app, self.PATH, payload)
        assert response.status_code == 202
        assert {j["target"] for j in response.get_json()["jobs"]} == {"ops-webhook", "slack-ops"}

    def test_named_targets_override_the_filters(self, app, mem) -> None:
        body = post(app, self.PATH, {**enriched(), "targets": ["ops-webhook"]}).get_json()
        assert [j["target"] for j in body["jobs"]] == ["ops-webhook"]
        body = post(app, self.PATH, {"alerts": [enriched("Other")], "targets": ["slack-ops"]}).get_json()
        assert [j["target"] for j in body["jobs"]] == ["slack-ops"]

    def test_a_critical_classification_is_high_priority(self, app) -> None:
        body = post(app, self.PATH, enriched(severity="critical")).get_json()
        assert {j["priority"] for j in body["jobs"]} == {"high"}

    def test_an_unknown_target_is_404_naming_it_and_enqueues_nothing(self, app, mem) -> None:
        payload = {**enriched(), "targets": ["ops-webhook", "nope"]}
        error = error_of(post(app, self.PATH, payload), 404, "not_found")
        assert error["details"] == {"kind": "target", "id": "nope"}
        assert "nope" in error["message"]
        nothing_enqueued(mem)

    @pytest.mark.parametrize("targets", ["ops-webhook", [1], [], [""], None])
    def test_targets_of_the_wrong_type_are_422(self, app, mem, targets) -> None:
        error = error_of(post(app, self.PATH, {**enriched(), "targets": targets}), 422, "invalid_body")
        assert error["details"]["problems"][0]["field"] == "targets"
        nothing_enqueued(mem)

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            (enriched(alert_name=None), "alert.labels.alertname"),
            (enriched(starts_at="2026-11-28T10:00:00Z", ends_at="2026-11-28T09:00:00Z"), "alert.ends_at"),
            ({**enriched(), "classification": {"severity": "urgent"}}, "classification.severity"),
            (
                {**enriched(), "classification": {"severity": "info", "confidence": 7}},
                "classification.confidence",
            ),
            ({"alerts": [enriched(), {"alert": {"status": "firing"}}]}, "alerts[1].alert.labels.alertname"),
            ({"alerts": [enriched(), "x"]}, "alerts[1]"),
        ],
    )
    def test_an_invalid_alert_is_422_naming_the_field(self, app, mem, payload, field) -> None:
        error = error_of(post(app, self.PATH, payload), 422, "invalid_alert")
        assert field in [p["field"] for p in error["details"]["problems"]]
        nothing_enqueued(mem)

    def test_more_alerts_than_allowed_is_413(self, app, mem) -> None:
        for payload in ([enriched()] * 1001, {"alerts": [enriched()] * 1001}):
            error = error_of(post(app, self.PATH, payload), 413, "too_many_alerts")
            assert error["details"]["count"] == 1001
        nothing_enqueued(mem)

    def test_an_operator_token_is_needed(self, app, mem) -> None:
        response = app.test_client().post(self.PATH, json=enriched(), headers=bearer("reader"))
        error_of(response, 403, "forbidden")
        nothing_enqueued(mem)
