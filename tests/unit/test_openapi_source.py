"""The OpenAPI document is generated from the code, so it cannot drift: every served route and
method is in it, every enum in it is a domain enum's values, its caps follow the settings, and
each route's query parameters are the ones its validation accepts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest
from flask import Flask

from api import create_app, schemas, schemas_targets
from api.errors import NotFoundKind
from api.openapi import build_document
from api.schemas_alerts import WEBHOOK_VERSION
from api.schemas_query import Query
from api.schemas_routes import OPERATIONS
from api.testing import bearer, in_memory_api, settings_with_tokens
from publishing.alert import AlertStatus, Severity
from publishing.breaker import BreakerState
from publishing.classification import ErrorType
from publishing.dlq import ReplayResult
from publishing.history import AttemptResult
from publishing.priority import Priority
from publishing.replay import RunState
from publishing.settings import Settings
from publishing.target_health import HealthEvent
from publishing.targets import REDACTED, TargetFormat, TargetType
from publishing.tracking import JobState

URL = "/api/v2/openapi.json"
# Component name -> the values the domain uses.
DOMAIN_ENUMS: dict[str, list[Any]] = {
    "Priority": [p.value for p in Priority],
    "JobState": [s.value for s in JobState],
    "ErrorType": [e.value for e in ErrorType],
    "BreakerState": [s.label for s in BreakerState],
    "ReplayResult": [r.value for r in ReplayResult],
    "RunState": [s.value for s in RunState],
    "TargetType": [t.value for t in TargetType],
    "TargetFormat": [f.value for f in TargetFormat],
    "TestSeverity": [s.value for s in Severity if s is not Severity.NOISE],
    "BreakerEvent": [HealthEvent.TRIPPED.value, HealthEvent.RECOVERED.value],
    "AttemptResult": [r.value for r in AttemptResult],
}
# Enums that are not a domain enum's own component but still come from the domain.
INLINE_ENUMS: list[list[Any]] = [
    [s.value for s in AlertStatus],
    [s.value for s in Severity],
    [REDACTED],
    [WEBHOOK_VERSION, int(WEBHOOK_VERSION), None],
    [None, False, 0, "", [], {}],  # what the lenient alert parser reads as absent
]


def _app(settings: Settings | None = None) -> Flask:
    return create_app(settings or settings_with_tokens(), in_memory_api([]).services)


def _document(app: Flask) -> dict[str, Any]:
    answer = app.test_client().get(URL)
    assert answer.status_code == 200
    return answer.get_json()  # type: ignore[no-any-return]


def _walk(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


@pytest.fixture(scope="module")
def app() -> Flask:
    return _app()


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    return _document(app)


def test_every_route_and_method_is_documented(app: Flask, document: dict[str, Any]) -> None:
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == documented
    assert len(served) == len(OPERATIONS)


def test_the_console_is_served_beside_the_api_and_not_documented(
    app: Flask, document: dict[str, Any]
) -> None:
    # The console's /ui/ pages are HTML for people, not API: their own app (api/ui), mounted
    # beside this one, so they are neither in its url_map nor in the document.
    assert app.test_client().get("/ui/login").status_code == 200
    assert not [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/ui")]
    assert not [path for path in document["paths"] if path.startswith("/ui")]


def test_a_route_without_an_entry_fails_the_document() -> None:
    app = _app()
    app.add_url_rule("/undocumented", "undocumented", lambda: "")
    with pytest.raises(LookupError, match="/undocumented"):
        build_document(app, settings_with_tokens())


def test_path_parameters_are_the_routes_own(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), path
    replay = document["paths"]["/api/v2/publishing/dlq/{letter_id}/replay"]["post"]
    assert replay["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}


def test_enum_components_are_the_domain_enums(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for name, values in DOMAIN_ENUMS.items():
        assert components[name]["enum"] == values, name


def test_every_enum_in_the_document_is_a_domain_enum(document: dict[str, Any]) -> None:
    allowed = [*DOMAIN_ENUMS.values(), *INLINE_ENUMS]
    found = list(_walk(document, "enum"))
    assert found
    for values in found:
        assert values in allowed, values


def test_domain_enums_are_referenced_where_the_api_uses_them(document: dict[str, Any]) -> None:
    schemas_ = document["components"]["schemas"]
    ref = "#/components/schemas/{}".format
    assert schemas_["Job"]["properties"]["state"] == {"$ref": ref("JobState")}
    assert schemas_["DeadLetter"]["properties"]["error_type"] == {"$ref": ref("ErrorType")}
    assert schemas_["BreakerStatus"]["properties"]["state"] == {"$ref": ref("BreakerState")}
    assert schemas_["QueueStatus"]["properties"]["depth"]["required"] == DOMAIN_ENUMS["Priority"]
    assert schemas_["QueueStats"]["properties"]["queues"]["required"] == DOMAIN_ENUMS["Priority"]
    assert schemas_["ReplayRun"]["properties"]["state"] == {"$ref": ref("RunState")}
    jobs = document["paths"]["/api/v2/publishing/jobs"]["get"]["parameters"]
    assert {"name": "state", "in": "query", "required": False, "schema": {"$ref": ref("JobState")}} in jobs


def test_caps_follow_the_settings() -> None:
    default = _document(_app())
    assert set(_walk(default, "maxItems")) == {Settings().max_alerts_per_request}

    settings = settings_with_tokens(max_alerts_per_request=7, max_body_bytes=4096)
    document = _document(_app(settings))
    caps = list(_walk(document, "maxItems"))
    assert len(caps) == 3  # webhook alerts, submit's {alerts: [...]} and a bare list
    assert set(caps) == {7}
    too_large = document["components"]["responses"]["E413"]["description"]
    assert "4096 bytes" in too_large
    assert "more than 7 alerts" in too_large


def _query_routes(app: Flask) -> Iterator[tuple[str, str, type[Query]]]:
    for rule in app.url_map.iter_rules():
        model = getattr(app.view_functions[rule.endpoint], "query_model", None)
        if model is not None:
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                yield rule.rule, method, model


def test_documented_query_parameters_are_the_validated_ones(app: Flask, document: dict[str, Any]) -> None:
    routes = list(_query_routes(app))
    assert {path for path, _, _ in routes} == {
        "/api/v2/publishing/jobs",
        "/api/v2/publishing/dlq",
        "/api/v2/publishing/dlq/purge",
        "/api/v2/publishing/history",
    }
    client = app.test_client()
    for path, method, model in routes:
        operation = document["paths"][path][method.lower()]
        documented = [p["name"] for p in operation["parameters"] if p["in"] == "query"]
        assert documented == list(model.names())
        answer = client.open(f"{path}?not_a_parameter=1", method=method, headers=bearer("admin"))
        assert answer.status_code == 400
        assert answer.get_json()["details"]["allowed"] == sorted(model.names())


def test_documented_bounds_are_the_enforced_ones(app: Flask, document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/v2/publishing/jobs"]["get"]["parameters"]
    (limit,) = [p["schema"] for p in parameters if p["name"] == "limit"]
    client = app.test_client()
    over = client.get(f"/api/v2/publishing/jobs?limit={limit['maximum'] + 1}", headers=bearer("reader"))
    at = client.get(f"/api/v2/publishing/jobs?limit={limit['maximum']}", headers=bearer("reader"))
    assert (over.status_code, at.status_code) == (400, 200)


def test_every_model_is_in_the_document(document: dict[str, Any]) -> None:
    models = {
        name
        for module in (schemas, schemas_targets)
        for name, value in vars(module).items()
        if isinstance(value, type)
        and value.__module__ == module.__name__
        and not issubclass(value, Enum)
        and name == value.__name__
    }
    assert "Target" in models and "TargetHealth" in models
    assert models <= set(document["components"]["schemas"])


def test_a_404_has_one_code_and_details_kind_names_what_was_missing(document: dict[str, Any]) -> None:
    not_found = document["components"]["responses"]["E404"]
    for kind in NotFoundKind:
        assert kind.value in not_found["description"]
    example = not_found["content"]["application/json"]["example"]
    assert example["error"] == "not_found"
    assert example["details"]["kind"] in {k.value for k in NotFoundKind}
    codes = document["components"]["schemas"]["Error"]["properties"]["error"]["description"]
    assert "not_found" in codes and "_not_found" not in codes


def test_a_row_id_is_a_uuid_and_any_other_is_a_404(document: dict[str, Any]) -> None:
    replay = document["paths"]["/api/v2/publishing/dlq/{letter_id}/replay"]["post"]
    [letter_id] = [p for p in replay["parameters"] if p["name"] == "letter_id"]
    assert letter_id["schema"] == {"type": "string", "format": "uuid"}
    assert "404" in letter_id["description"] and "404" in replay["responses"]


TIME_FIELDS = {
    "Job": ("submitted_at", "started_at", "completed_at"),
    "BreakerStatus": ("opened_at",),
    "TargetHealth": ("last_success_at", "last_failure_at"),
    "BreakerHistoryEntry": ("at",),
    "ReplayRun": ("started_at", "finished_at"),
    "DeadLetter": ("failed_at", "replayed_at"),
}


@pytest.mark.parametrize(("model", "fields"), TIME_FIELDS.items(), ids=list(TIME_FIELDS))
def test_every_time_is_an_iso_8601_date_time(
    document: dict[str, Any], model: str, fields: tuple[str, ...]
) -> None:
    properties = document["components"]["schemas"][model]["properties"]
    for name in fields:
        assert "date-time" in list(_walk(properties[name], "format")), (model, name)
