"""Input no endpoint should read, refused in the error shape before any route reads it: a NUL byte
in a query value, a query name or a path segment (400 naming it), a URL over its cap (414), a
header over its cap (431); and every operation of the OpenAPI document declares those answers."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from api import create_app
from api.limits import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_URL_BYTES
from api.openapi import document_of
from api.testing import InMemoryApi, bearer, in_memory_api, settings_with_tokens

TARGETS = [{"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}]
ADMIN = bearer("admin")
DLQ = "/api/v2/publishing/dlq"


@pytest.fixture
def mem() -> InMemoryApi:
    return in_memory_api(TARGETS)


@pytest.fixture
def app(mem: InMemoryApi) -> Flask:
    return create_app(settings_with_tokens(), mem.services)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


@pytest.mark.parametrize(
    ("method", "url", "parameter"),
    [
        ("GET", f"{DLQ}?target=%00x", "target"),
        ("GET", f"{DLQ}?target=ok&failed_after=%00", "failed_after"),
        ("GET", "/api/v2/publishing/jobs?target=a%00b", "target"),
        ("GET", "/api/v2/publishing/jobs?state=%00", "state"),
        ("DELETE", f"{DLQ}/purge?older_than=%007d", "older_than"),
        ("GET", "/healthz?x=%00", "x"),
        ("GET", f"{DLQ}?tar%00get=x", "tar\x00get"),
        ("GET", "/api/v2/publishing/jobs/%00abc", "job_id"),
        ("GET", "/api/v2/publishing/targets/ops%00", "name"),
        ("POST", "/api/v2/publishing/breakers/x%00y/reset", "target"),
        ("GET", f"{DLQ}/replay/run%00", "run_id"),
        ("GET", f"{DLQ}/%00", "letter_id"),
    ],
)
def test_a_nul_byte_is_400_naming_the_parameter(app, mem, method, url, parameter) -> None:
    response = app.test_client().open(url, method=method, headers=ADMIN)
    error = error_of(response, 400, "invalid_parameter")
    assert error["details"]["parameter"] == parameter
    assert mem.enqueuer.sent == []


def test_a_nul_byte_in_a_bulk_replay_filter_is_refused(app, mem) -> None:
    response = app.test_client().post(f"{DLQ}/replay", json={"target": "a\x00b"}, headers=ADMIN)
    error = error_of(response, 422, "invalid_body")
    assert error["details"]["problems"][0]["field"] == "target"


def test_a_url_over_the_cap_is_414(app) -> None:
    long_target = "t" * (MAX_URL_BYTES + 2000)
    response = app.test_client().get(f"{DLQ}?target={long_target}", headers=ADMIN)
    error = error_of(response, 414, "uri_too_long")
    assert error["details"]["max_url_bytes"] == MAX_URL_BYTES


def test_a_url_at_the_cap_is_served(app) -> None:
    prefix = f"{DLQ}?target="
    response = app.test_client().get(prefix + "t" * (MAX_URL_BYTES - len(prefix)), headers=ADMIN)
    assert response.status_code == 200


def test_a_header_over_the_cap_is_431_and_not_echoed(app) -> None:
    value = "v" * (2 * MAX_HEADER_BYTES)
    response = app.test_client().get("/healthz", headers={"X-Big": value})
    error = error_of(response, 431, "request_header_fields_too_large")
    assert error["details"]["header"] == "X-Big"
    assert value not in response.get_data(as_text=True)


def test_an_over_long_token_is_431_before_auth(app) -> None:
    response = app.test_client().get(f"{DLQ}", headers={"Authorization": "Bearer " + "x" * 20_000})
    error_of(response, 431, "request_header_fields_too_large")


def test_too_many_headers_is_431(app) -> None:
    headers = {f"X-H{n}": "1" for n in range(MAX_HEADER_FIELDS + 1)}
    error_of(app.test_client().get("/healthz", headers=headers), 431, "request_header_fields_too_large")


def test_every_operation_declares_the_refusals(app) -> None:
    document = document_of(app)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "414", "431"):
                assert status in operation["responses"], f"{method.upper()} {path} lacks {status}"
    responses = document["components"]["responses"]
    assert str(MAX_URL_BYTES) in responses["E414"]["description"]
    assert str(MAX_HEADER_BYTES) in responses["E431"]["description"]


def test_purge_declares_its_safety_switches(app) -> None:
    operation = document_of(app)["paths"][f"{DLQ}/purge"]["delete"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"older_than", "replayed_only", "force", "dry_run"} <= names
