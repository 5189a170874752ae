"""Parsing and validation of the two alert input formats (docs/design.md (Priority))."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publishing.alert import (
    Alert,
    AlertStatus,
    Classification,
    EnrichedAlert,
    Severity,
    derive_fingerprint,
    parse_alertmanager,
    parse_enriched,
)
from publishing.errors import InvalidAlertError


def am_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "HighLatency", "severity": "warning", "service": "api"},
        "annotations": {"summary": "p99 latency above 2s"},
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
        "fingerprint": "a1b2c3d4e5f60718",
    }
    alert.update(overrides)
    return alert


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "receiver": "publishing",
        "status": "firing",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
    }


def enriched_item(**alert_overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "fingerprint": "f00dfeedf00dfeed",
        "alert_name": "DiskFull",
        "status": "firing",
        "labels": {"alertname": "DiskFull", "severity": "critical", "namespace": "prod"},
        "annotations": {"summary": "disk 95% full"},
        "starts_at": "2024-05-01T10:00:00Z",
    }
    alert.update(alert_overrides)
    return {
        "alert": alert,
        "classification": {
            "severity": "critical",
            "confidence": 0.92,
            "reasoning": "disk fills within the hour",
            "recommendations": ["expand the volume", "prune old logs"],
        },
        "enrichment_metadata": {"model": "v2", "latency_ms": 41},
    }


def problem_fields(exc: InvalidAlertError) -> set[str]:
    return {p["field"] for p in exc.problems}


# --- Alertmanager webhook v4 ---------------------------------------------------------


def test_alertmanager_payload_with_a_resolved_and_a_firing_alert() -> None:
    resolved = am_alert(
        status="resolved",
        labels={"alertname": "NodeDown", "instance": "db-1"},
        startsAt="2024-05-01T09:00:00Z",
        endsAt="2024-05-01T09:30:00Z",
        fingerprint="0123456789abcdef",
    )
    firing = am_alert()

    parsed = parse_alertmanager(am_payload(resolved, firing))

    assert [e.alert.status for e in parsed] == [AlertStatus.RESOLVED, AlertStatus.FIRING]
    first, second = (e.alert for e in parsed)
    assert first.alert_name == "NodeDown"
    assert first.fingerprint == "0123456789abcdef"
    assert first.starts_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    assert first.ends_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert second.ends_at is None
    assert second.labels["service"] == "api"
    assert second.annotations == {"summary": "p99 latency above 2s"}
    assert second.generator_url == "http://prometheus:9090/graph?g0.expr=latency"
    assert all(e.classification is None for e in parsed)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC), id="nanoseconds"),
        pytest.param("2024-05-01T10:00:00.5Z", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC), id="one-fraction-digit"),
        pytest.param("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), id="offset-to-utc"),
        pytest.param("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), id="no-fraction"),
    ],
)  # fmt: skip
def test_alertmanager_timestamps(raw: str, expected: datetime) -> None:
    [enriched] = parse_alertmanager(am_payload(am_alert(startsAt=raw)))
    assert enriched.alert.starts_at == expected


def test_missing_fingerprint_is_derived_from_the_labels() -> None:
    raw = am_alert()
    del raw["fingerprint"]
    [enriched] = parse_alertmanager(am_payload(raw))
    assert enriched.alert.fingerprint == derive_fingerprint(raw["labels"])


@pytest.mark.parametrize(
    ("bad_alert", "field"),
    [
        pytest.param(am_alert(labels={"severity": "critical"}), "alerts[1].labels.alertname", id="missing-alertname"),
        pytest.param(am_alert(labels={"alertname": ""}), "alerts[1].labels.alertname", id="empty-alertname"),
        pytest.param(am_alert(status="pending"), "alerts[1].status", id="bad-status"),
        pytest.param(am_alert(status=None), "alerts[1].status", id="missing-status"),
        pytest.param(
            am_alert(status="resolved", startsAt="2024-05-01T10:00:00Z", endsAt="2024-05-01T09:59:59Z"),
            "alerts[1].endsAt",
            id="ends-before-starts",
        ),
        pytest.param(am_alert(labels={"alertname": "X", "replica": 2}), "alerts[1].labels.replica", id="non-string-label"),
        pytest.param(am_alert(annotations={"summary": ["a"]}), "alerts[1].annotations.summary", id="non-string-annotation"),
        pytest.param(am_alert(startsAt="yesterday"), "alerts[1].startsAt", id="bad-timestamp"),
        pytest.param(am_alert(startsAt="2024-05-01T10:00:00"), "alerts[1].startsAt", id="timestamp-without-zone"),
        pytest.param(am_alert(startsAt=None), "alerts[1].startsAt", id="missing-startsAt"),
        pytest.param(am_alert(fingerprint=""), "alerts[1].fingerprint", id="empty-fingerprint"),
        pytest.param("not an alert", "alerts[1]", id="not-an-object"),
    ],
)  # fmt: skip
def test_alertmanager_rejects_a_bad_alert_naming_its_field(bad_alert: Any, field: str) -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse_alertmanager(am_payload(am_alert(), bad_alert))
    assert field in problem_fields(caught.value)
    assert str(caught.value).startswith(field)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param(am_payload(), "alerts", id="empty-alerts"),
        pytest.param({"version": "4", "status": "firing"}, "alerts", id="no-alerts-key"),
        pytest.param({**am_payload(am_alert()), "alerts": {"a": 1}}, "alerts", id="alerts-not-a-list"),
        pytest.param({**am_payload(am_alert()), "version": "3"}, "version", id="wrong-version"),
        pytest.param([am_alert()], "$", id="not-an-object"),
    ],
)  # fmt: skip
def test_alertmanager_rejects_a_bad_envelope(payload: Any, field: str) -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse_alertmanager(payload)
    assert field in problem_fields(caught.value)


@pytest.mark.parametrize(
    ("count", "max_alerts", "accepted"),
    [
        pytest.param(3, 3, True, id="at-the-limit"),
        pytest.param(4, 3, False, id="over-the-limit"),
        pytest.param(50, None, True, id="no-limit"),
    ],
)
def test_alertmanager_max_alerts(count: int, max_alerts: int | None, accepted: bool) -> None:
    payload = am_payload(*[am_alert(fingerprint=f"fp{i}") for i in range(count)])
    if accepted:
        assert len(parse_alertmanager(payload, max_alerts=max_alerts)) == count
    else:
        with pytest.raises(InvalidAlertError) as caught:
            parse_alertmanager(payload, max_alerts=max_alerts)
        assert problem_fields(caught.value) == {"alerts"}


def test_one_bad_alert_rejects_the_whole_request_and_every_problem_is_listed() -> None:
    payload = am_payload(
        am_alert(fingerprint="good-1"),
        am_alert(labels={"severity": "critical"}),
        am_alert(fingerprint="good-2"),
        am_alert(status="unknown", labels={"alertname": "X", "n": 1}),
    )
    with pytest.raises(InvalidAlertError) as caught:
        parse_alertmanager(payload)
    assert problem_fields(caught.value) == {
        "alerts[1].labels.alertname",
        "alerts[3].status",
        "alerts[3].labels.n",
    }
    assert all(p["message"] for p in caught.value.problems)
    assert "(and 2 more)" in str(caught.value)


# --- enriched alerts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected_count"),
    [
        pytest.param("single", 1, id="single-object"),
        pytest.param("list", 2, id="list"),
        pytest.param("alerts-key", 2, id="alerts-key"),
    ],
)
def test_enriched_accepts_every_shape(shape: str, expected_count: int) -> None:
    first = enriched_item()
    second = enriched_item(fingerprint="beefbeefbeefbeef", status="resolved", ends_at="2024-05-01T11:00:00Z")
    payload: Any = {
        "single": first,
        "list": [first, second],
        "alerts-key": {"alerts": [first, second]},
    }[shape]

    parsed = parse_enriched(payload)

    assert len(parsed) == expected_count
    head = parsed[0]
    assert head.alert.fingerprint == "f00dfeedf00dfeed"
    assert head.alert.alert_name == "DiskFull"
    assert head.classification == Classification(
        severity=Severity.CRITICAL,
        confidence=0.92,
        reasoning="disk fills within the hour",
        recommendations=("expand the volume", "prune old logs"),
    )
    assert head.enrichment_metadata == {"model": "v2", "latency_ms": 41}
    if expected_count == 2:
        assert parsed[1].alert.ends_at == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)


def test_enriched_without_classification() -> None:
    item = enriched_item()
    del item["classification"]
    [parsed] = parse_enriched(item)
    assert parsed.classification is None
    assert parsed.severity == "critical"  # from the label


def test_enriched_alert_name_fills_a_missing_alertname_label() -> None:
    item = enriched_item(labels={"severity": "warning"})
    [parsed] = parse_enriched(item)
    assert parsed.alert.alert_name == "DiskFull"
    assert parsed.alert.labels["alertname"] == "DiskFull"


def _with_classification(**changes: Any) -> dict[str, Any]:
    item = enriched_item()
    item["classification"] = {**item["classification"], **changes}
    return item


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param(_with_classification(severity="Critical"), "classification.severity", id="severity-case"),
        pytest.param(_with_classification(severity="high"), "classification.severity", id="severity-unknown"),
        pytest.param(_with_classification(confidence=1.5), "classification.confidence", id="confidence-over-1"),
        pytest.param(_with_classification(confidence=-0.1), "classification.confidence", id="confidence-negative"),
        pytest.param(_with_classification(confidence="0.5"), "classification.confidence", id="confidence-string"),
        pytest.param(_with_classification(confidence=True), "classification.confidence", id="confidence-bool"),
        pytest.param(_with_classification(recommendations="do it"), "classification.recommendations", id="recommendations-not-list"),
        pytest.param(enriched_item(status="ok"), "alert.status", id="bad-status"),
        pytest.param(enriched_item(alert_name=None, labels={}), "alert.labels.alertname", id="no-name"),
        pytest.param(
            enriched_item(starts_at="2024-05-01T10:00:00Z", ends_at="2024-05-01T09:00:00Z"),
            "alert.ends_at",
            id="ends-before-starts",
        ),
        pytest.param({**enriched_item(), "enrichment_metadata": [1]}, "enrichment_metadata", id="metadata-not-object"),
        pytest.param({"alerts": []}, "alerts", id="empty-alerts"),
        pytest.param([], "alerts", id="empty-list"),
        pytest.param({"alert_name": "X"}, "$", id="no-alert-key"),
        pytest.param([enriched_item(), enriched_item(status="nope")], "$[1].alert.status", id="list-path"),
        pytest.param({"alerts": [enriched_item(), _with_classification(confidence=2)]}, "alerts[1].classification.confidence", id="alerts-path"),
    ],
)  # fmt: skip
def test_enriched_rejects_naming_the_field(payload: Any, field: str) -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse_enriched(payload)
    assert field in problem_fields(caught.value)


def test_enriched_max_alerts() -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse_enriched([enriched_item()] * 3, max_alerts=2)
    assert problem_fields(caught.value) == {"alerts"}
    assert len(parse_enriched([enriched_item()] * 2, max_alerts=2)) == 2


def test_enriched_one_bad_among_good_lists_every_problem() -> None:
    bad_name = enriched_item(alert_name=None, labels={})
    bad_class = _with_classification(severity="urgent", confidence=7)
    with pytest.raises(InvalidAlertError) as caught:
        parse_enriched({"alerts": [enriched_item(), bad_name, enriched_item(), bad_class]})
    assert problem_fields(caught.value) == {
        "alerts[1].alert.labels.alertname",
        "alerts[3].classification.severity",
        "alerts[3].classification.confidence",
    }


def test_parsing_does_not_modify_the_payload() -> None:
    payload = {"alerts": [enriched_item(labels={"severity": "warning"})]}
    before = copy.deepcopy(payload)
    parse_enriched(payload)
    assert payload == before


# --- fingerprints and round trips -----------------------------------------------------


def test_fingerprint_is_deterministic_and_independent_of_label_order() -> None:
    labels = {"alertname": "A", "severity": "critical", "instance": "db-1"}
    reordered = dict(reversed(list(labels.items())))
    assert derive_fingerprint(labels) == derive_fingerprint(dict(labels))
    assert derive_fingerprint(labels) == derive_fingerprint(reordered)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({"alertname": "A"}, {"alertname": "B"}, id="value"),
        pytest.param({"alertname": "A", "x": "1"}, {"alertname": "A", "y": "1"}, id="name"),
        pytest.param({"alertname": "A"}, {"alertname": "A", "x": ""}, id="extra-empty-label"),
        pytest.param({"a": "1", "b": "2"}, {"a": "1,b=2"}, id="no-separator-collision"),
        pytest.param({"a": "1", "b": "2"}, {"a": '1","b":"2'}, id="no-quoting-collision"),
    ],
)
def test_fingerprint_differs_for_different_labels(left: dict[str, str], right: dict[str, str]) -> None:
    assert derive_fingerprint(left) != derive_fingerprint(right)


def test_enriched_alert_round_trips_through_to_dict() -> None:
    [original] = parse_enriched(
        enriched_item(
            status="resolved",
            starts_at="2024-05-01T10:00:00.123456789Z",
            ends_at="2024-05-01T10:05:00Z",
            generator_url="http://prom/graph",
        )
    )
    assert EnrichedAlert.from_dict(original.to_dict()) == original


def test_alertmanager_alert_round_trips_through_to_dict() -> None:
    for original in parse_alertmanager(
        am_payload(am_alert(), am_alert(status="resolved", endsAt="2024-05-02T00:00:00Z"))
    ):
        assert EnrichedAlert.from_dict(original.to_dict()) == original


# --- properties -------------------------------------------------------------------------

label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)
label_maps = st.dictionaries(label_names, st.text(max_size=30), max_size=8)


@given(labels=label_maps, data=st.data())
def test_fingerprint_is_stable_under_any_label_reordering(
    labels: dict[str, str], data: st.DataObject
) -> None:
    shuffled = dict(data.draw(st.permutations(list(labels.items()))))
    assert derive_fingerprint(shuffled) == derive_fingerprint(labels)


times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@st.composite
def enriched_alerts(draw: st.DrawFn) -> EnrichedAlert:
    labels = draw(label_maps)
    labels["alertname"] = draw(st.text(min_size=1, max_size=20))
    starts_at = draw(times)
    status = draw(st.sampled_from(AlertStatus))
    ends_at = None
    if status is AlertStatus.RESOLVED and draw(st.booleans()):
        ends_at = starts_at + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
    classification = draw(
        st.none()
        | st.builds(
            Classification,
            severity=st.sampled_from(Severity),
            confidence=st.floats(min_value=0, max_value=1),
            reasoning=st.text(max_size=40),
            recommendations=st.lists(st.text(max_size=20), max_size=3).map(tuple),
        )
    )
    metadata = draw(st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=3))
    alert = Alert(
        fingerprint=draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        alert_name=labels["alertname"],
        status=status,
        labels=labels,
        annotations=draw(st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4)),
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=draw(st.sampled_from(["", "http://prometheus:9090/graph"])),
    )
    return EnrichedAlert(alert, classification, metadata)


@given(enriched_alerts())
def test_to_dict_from_dict_round_trip(original: EnrichedAlert) -> None:
    assert EnrichedAlert.from_dict(original.to_dict()) == original


def _am(alert: dict[str, Any]) -> dict[str, Any]:
    base = {"status": "firing", "labels": {"alertname": "Cap"}, "startsAt": "2024-05-01T10:00:00Z"}
    return {"version": "4", "alerts": [{**base, **alert}]}


@pytest.mark.parametrize(
    ("alert", "field", "words"),
    [
        ({"fingerprint": "f" * 256}, "alerts[0].fingerprint", "longer than 255"),
        (
            {"labels": {"alertname": "Cap", **{f"l{i}": "v" for i in range(64)}}},
            "alerts[0].labels",
            "at most 64",
        ),
        ({"labels": {"alertname": "Cap", "big": "x" * 8193}}, "alerts[0].labels.big", "longer than 8192"),
        ({"annotations": {"k" * 257: "v"}}, "alerts[0].annotations", "longer than 256"),
        ({"generatorURL": "u" * 8193}, "alerts[0].generatorURL", "longer than 8192"),
    ],
)
def test_alertmanager_fields_over_their_caps_are_refused_by_name(
    alert: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse_alertmanager(_am(alert))
    [problem] = caught.value.problems
    assert problem["field"] == field and words in problem["message"]


def test_a_fingerprint_at_the_cap_is_accepted() -> None:
    [alert] = parse_alertmanager(_am({"fingerprint": "f" * 255}))
    assert alert.alert.fingerprint == "f" * 255


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        (_nested(17), "deeper than 16"),
        (_nested(5000), "deeper than 16"),
        ({"score": float("nan")}, "not finite"),
        ({"score": [1.0, float("inf")]}, "not finite"),
        ({"blob": "x" * 70_000}, "larger than 65536 bytes"),
    ],
)
def test_enrichment_metadata_that_cannot_be_carried_is_refused(metadata: dict[str, Any], words: str) -> None:
    payload = {
        "alert": {"alert_name": "Cap", "status": "firing", "starts_at": "2024-05-01T10:00:00Z"},
        "enrichment_metadata": metadata,
    }
    with pytest.raises(InvalidAlertError) as caught:
        parse_enriched(payload)
    [problem] = caught.value.problems
    assert problem["field"] == "enrichment_metadata" and words in problem["message"]


def test_metadata_sixteen_levels_deep_is_accepted() -> None:
    payload = {
        "alert": {"alert_name": "Cap", "status": "firing", "starts_at": "2024-05-01T10:00:00Z"},
        "enrichment_metadata": _nested(16),
    }
    [alert] = parse_enriched(payload)
    assert alert.enrichment_metadata == _nested(16)


# --- the Alertmanager envelope ----------------------------------------------------------

ENVELOPE_FIELDS = {
    "receiver": "publishing",
    "externalURL": "http://alertmanager:9093",
    "groupKey": '{}:{alertname="HighLatency"}',
    "groupLabels": {"alertname": "HighLatency"},
    "commonLabels": {"alertname": "HighLatency"},
    "commonAnnotations": {},
    "truncatedAlerts": 0,
}


def test_each_alertmanager_alert_keeps_the_envelope_it_came_in() -> None:
    parsed = parse_alertmanager(am_payload(am_alert(), am_alert(fingerprint="0123456789abcdef")))
    assert [e.envelope for e in parsed] == [ENVELOPE_FIELDS, ENVELOPE_FIELDS]


def test_the_envelope_rides_to_dict_and_from_dict() -> None:
    [original] = parse_alertmanager(am_payload(am_alert()))
    carried = json.loads(json.dumps(original.to_dict()))
    assert carried["envelope"] == ENVELOPE_FIELDS
    assert EnrichedAlert.from_dict(carried) == original


def test_an_enriched_alert_has_no_envelope_and_ignores_one_submitted() -> None:
    [parsed] = parse_enriched({**enriched_item(), "envelope": ENVELOPE_FIELDS})
    assert parsed.envelope is None
    assert "envelope" not in parsed.to_dict()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("receiver", 7),
        ("externalURL", ["x"]),
        ("groupKey", "k" * 9000),
        ("groupLabels", {"a": 1}),
        ("commonAnnotations", "text"),
        ("truncatedAlerts", -1),
        ("truncatedAlerts", "3"),
    ],
)
def test_a_bad_envelope_field_is_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(InvalidAlertError) as caught:
        parse_alertmanager({**am_payload(am_alert()), field: value})
    assert any(f == field or f.startswith(f"{field}.") for f in problem_fields(caught.value))
