"""Bad input, generated (hypothesis): the parsers take any JSON-like value and either parse
it or raise their documented error (``InvalidAlertError`` for alerts, ``ConfigError`` for
targets), never another exception; what parses survives the trip through a job message (the
form a worker rebuilds it from); and the API answers any JSON body without a 5xx, every 4xx
in the error shape ``{"error", "message", "details"}``.

Strings include lone surrogates on purpose: ``"\\ud800"`` is valid JSON, so a sender can put one
anywhere, and Python's JSON decoder hands it over as is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from publishing.alert import GO_ZERO_TIME, EnrichedAlert, parse_alertmanager, parse_enriched
from publishing.errors import ConfigError, InvalidAlertError
from publishing.settings import Settings
from publishing.target_config import parse_target
from publishing.targets import Target
from tests.faults.rig import am_alert, am_payload
from tests.support.fleet import write_targets

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The API client is built once a test and reused by every example: it holds no per-example state.
FUZZ_API = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

text = st.text(alphabet=st.characters() | st.sampled_from("\ud800\udbff\udc00"), max_size=12)
huge = st.sampled_from([10**400, -(10**400), 2**64])
numbers = st.integers() | st.floats() | huge
scalars = st.none() | st.booleans() | numbers | text
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(valid, valid, json_like)


def mutated(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid object, or one with a single field dropped or replaced by anything."""

    def mutate(value: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        if not value:
            return json_like.map(lambda junk: {"junk": junk})
        return st.sampled_from(sorted(value)).flatmap(
            lambda key: (
                st.just({k: v for k, v in value.items() if k != key})
                | json_like.map(lambda junk: {**value, key: junk})
            )
        )

    return st.one_of(valid, valid, valid, valid.flatmap(mutate))


good_timestamps = st.builds(
    "{:04d}-{}T{}{}{}".format,
    st.sampled_from([2026, 1970, 9999, 2, 1]),
    st.sampled_from(["12-31", "01-01", "02-28"]),
    st.sampled_from(["23:59:59", "00:00:00"]),
    st.sampled_from(["", ".0", ".000", ".123456789"]),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+01:00", "-01:00", "+14:00"]),
)
timestamps = (
    good_timestamps
    | st.just(GO_ZERO_TIME)
    | st.sampled_from(
        ["0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00+99:00"]
    )
)
names = st.sampled_from(["DiskFull", "ÄÖÜ", "a b", "x\ud800"]) | text.filter(bool)
label_names = st.sampled_from(["alertname", "severity", "instance", "namespace"]) | text
string_maps = st.dictionaries(label_names, text, max_size=3)
labels = st.fixed_dictionaries(
    {"alertname": names},
    optional={
        "severity": st.sampled_from(["critical", "warning", "info", "noise", ""]) | text,
        "instance": text,
    },
)
statuses = st.sampled_from(["firing", "resolved"])

am_alerts = mutated(
    st.fixed_dictionaries(
        {"status": statuses, "labels": labels, "startsAt": good_timestamps},
        optional={
            "annotations": string_maps,
            "endsAt": timestamps,
            "generatorURL": text,
            "fingerprint": names,
        },
    )
)
am_payloads = st.one_of(
    json_like,
    *[
        mutated(
            st.fixed_dictionaries(
                {"alerts": st.lists(am_alerts, min_size=1, max_size=3)},
                optional={"version": st.just("4"), "status": statuses, "receiver": text},
            )
        )
    ]
    * 3,
)
enriched_alerts = mutated(
    st.fixed_dictionaries(
        {"status": statuses, "starts_at": good_timestamps, "alert_name": names},
        optional={
            "fingerprint": names,
            "labels": labels,
            "annotations": string_maps,
            "ends_at": timestamps,
            "generator_url": text,
        },
    )
)
classifications = mutated(
    st.fixed_dictionaries(
        {"severity": st.sampled_from(["critical", "warning", "info", "noise"])},
        optional={
            "confidence": st.floats(0, 1) | st.sampled_from([0, 1]),
            "reasoning": text,
            "recommendations": st.lists(text, max_size=3),
        },
    )
)
enriched_items = mutated(
    st.fixed_dictionaries(
        {"alert": enriched_alerts},
        optional={"classification": classifications, "enrichment_metadata": json_like},
    )
)
enriched_payloads = (
    json_like
    | enriched_items
    | st.lists(enriched_items, min_size=1, max_size=3)
    | mutated(st.fixed_dictionaries({"alerts": st.lists(enriched_items, min_size=1, max_size=3)}))
)
target_dicts = mutated(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["hook", "a-b", "x" * 63]),
            "type": st.just("webhook"),
            "url": st.sampled_from(["http://h/x", "https://hooks.example.com/a", "http://[::1]:8080/a"]),
        },
        optional={
            "format": st.sampled_from(["webhook", "alertmanager"]),
            "enabled": st.booleans(),
            "headers": st.dictionaries(st.sampled_from(["X-Api-Key", "X-Team"]) | text, text, max_size=3),
            "filter": mutated(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "labels": string_maps,
                        "labels_regex": st.dictionaries(text, text, max_size=2),
                        "severity": st.lists(text, max_size=2) | text,
                        "status": st.lists(statuses, max_size=2),
                    },
                )
            ),
            "timeout_s": numbers,
            "bearer_token": text,
            "signing_secret": text,
            "basic_auth": mutated(st.fixed_dictionaries({"username": text, "password": text})),
            "rate_limit": st.just(False)
            | mutated(st.fixed_dictionaries({"per_s": numbers}, optional={"burst": st.integers()})),
            "fallback": st.lists(st.sampled_from(["other", "Bad_Name"]), max_size=2) | text,
            "fallback_after_s": numbers,
            "fallback_priorities": st.lists(st.sampled_from(["high", "medium", "low"]), max_size=3),
        },
    )
) | mutated(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["pd", "slack", "rootly"]),
            "type": st.sampled_from(["pagerduty", "slack", "rootly"]),
            "url": st.sampled_from(
                ["https://events.pagerduty.com/v2/enqueue", "https://hooks.slack.com/services/T/B/X"]
            ),
        },
        optional={
            "routing_key": text,
            "api_token": text,
            "format": st.sampled_from(["pagerduty", "slack", "rootly"]),
        },
    )
)


def _no_surrogate_fingerprint() -> dict[str, Any]:
    """A label with a lone surrogate and no fingerprint: the fingerprint is derived from it."""
    alert = am_alert("Surrogate\ud800")
    del alert["fingerprint"]
    return am_payload([alert])


def _go_zero_start(spelling: str) -> dict[str, Any]:
    alert = am_alert("ZeroStart")
    alert["startsAt"] = spelling
    return am_payload([alert])


def _survives_a_job_message(alerts: list[EnrichedAlert]) -> None:
    """A worker rebuilds the alert from ``to_dict()``: it must come back, and the same."""
    for alert in alerts:
        assert EnrichedAlert.from_dict(json.loads(json.dumps(alert.to_dict()))) == alert


@FUZZ
@given(payload=am_payloads)
@example(payload=_no_surrogate_fingerprint())
@example(payload=_go_zero_start("0001-01-01T00:00:00.000Z"))
def test_parse_alertmanager_parses_or_raises_invalid_alert(payload: Any) -> None:
    try:
        alerts = parse_alertmanager(payload, max_alerts=1000)
    except InvalidAlertError:
        return
    _survives_a_job_message(alerts)


@FUZZ
@given(payload=enriched_payloads)
def test_parse_enriched_parses_or_raises_invalid_alert(payload: Any) -> None:
    try:
        alerts = parse_enriched(payload, max_alerts=1000)
    except InvalidAlertError:
        return
    _survives_a_job_message(alerts)


@FUZZ
@given(raw=target_dicts | json_like)
@example(raw={"name": "hook", "type": "webhook", "url": "http://h/x", "timeout_s": 10**400})
@example(raw={"name": "hook", "type": "webhook", "url": "http://h/x", "rate_limit": {"per_s": 10**400}})
@example(raw={"name": "hook", "type": "webhook", "url": "http://h/x", "fallback_priorities": [{}]})
def test_parse_target_parses_or_raises_config_error(raw: Any) -> None:
    try:
        target = parse_target(raw)
    except ConfigError:
        return
    assert isinstance(target, Target)
    # What parsed can be shown: the public form is JSON and holds no secret.
    public = json.dumps(target.to_public_dict())
    assert not any(len(s) >= 4 and s in public for s in target.secrets() if s != target.url)


# --- the API, served by the real app over the real Redis (no worker: jobs just wait) ---


@pytest.fixture
def api_client(fresh_redis: str, dlq_database_url: str, tmp_path: Path) -> Iterator[Any]:
    from api import create_app

    targets = write_targets(
        tmp_path / "targets.yaml", [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/"}]
    )
    settings_ = Settings.from_env(
        {"REDIS_URL": fresh_redis, "DATABASE_URL": dlq_database_url, "PUBLISHING_TARGETS": str(targets),
         "PUBLISHING_INSECURE_NO_AUTH": "1"}
    )  # fmt: skip
    app = create_app(settings_)
    with app.test_client() as client:
        yield client


def _check_answer(response: Any) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.get_data(as_text=True)[:500]}"
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), response.get_data(as_text=True)[:200]
        assert set(body) == {"error", "message", "details"}, body
        assert isinstance(body["error"], str) and isinstance(body["message"], str)
        assert isinstance(body["details"], dict)


BODY_ENDPOINTS = ["/webhook", "/api/v2/publishing/submit"]


@pytest.mark.redis
@pytest.mark.postgres
@FUZZ_API
@given(body=am_payloads | enriched_payloads)
@example(body=_no_surrogate_fingerprint())
@example(body=am_payload([am_alert("Surrogate\ud800")]))
def test_the_api_answers_any_json_body_without_a_5xx(api_client: Any, body: Any) -> None:
    for path in BODY_ENDPOINTS:
        _check_answer(api_client.post(path, data=json.dumps(body), content_type="application/json"))


@pytest.mark.redis
@pytest.mark.postgres
@FUZZ_API
@given(raw=st.binary(max_size=64), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_the_api_answers_any_bytes_without_a_5xx(api_client: Any, raw: bytes, content_type: str) -> None:
    for path in BODY_ENDPOINTS:
        _check_answer(api_client.post(path, data=raw, content_type=content_type))
