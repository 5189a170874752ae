"""Targets (docs/design.md (Targets and payloads)): validation, filters, loading, reloading and redaction."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from publishing.adapters.target_files import TargetFiles, load_targets
from publishing.alert import Alert, AlertStatus, Classification, EnrichedAlert, Severity
from publishing.errors import ConfigError, UnknownTargetError
from publishing.target_config import parse_target
from publishing.targets import Target, TargetFormat, TargetRegistry, TargetType
from publishing.testing import FrozenClock

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef"
BEARER = "t0ken-bearer-5ecret"
SIGNING = "whsec_abcSIGNINGsecret"
ROOTLY_TOKEN = "rootly-api-t0ken-XYZ"
PASSWORD = "hunter2-basic-pass"
AUTH_HEADER = "Bearer hdr-auth-5ecret"
API_KEY_HEADER = "x-api-key-5ecret-value"
SLACK_SECRET_PATH = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
SLACK_URL = f"https://hooks.slack.com/services/{SLACK_SECRET_PATH}"

SPEC_EXAMPLE = f"""
targets:
  - name: pagerduty-prod
    type: pagerduty
    format: pagerduty
    url: https://events.pagerduty.com/v2/enqueue
    routing_key: {ROUTING_KEY}
    filter: {{severity: [critical, warning]}}
  - name: ops-webhook
    type: webhook
    format: webhook
    url: https://hooks.example.com/alerts
    bearer_token: {BEARER}
    signing_secret: {SIGNING}
"""


def raw_target(kind: str = "webhook", **overrides: Any) -> dict[str, Any]:
    base: dict[str, dict[str, Any]] = {
        "pagerduty": {
            "name": "pagerduty-prod",
            "type": "pagerduty",
            "format": "pagerduty",
            "url": "https://events.pagerduty.com/v2/enqueue",
            "routing_key": ROUTING_KEY,
        },
        "slack": {"name": "slack-ops", "type": "slack", "format": "slack", "url": SLACK_URL},
        "rootly": {
            "name": "rootly",
            "type": "rootly",
            "format": "rootly",
            "url": "https://api.rootly.com/v1/alerts",
            "api_token": ROOTLY_TOKEN,
        },
        "webhook": {
            "name": "ops-webhook",
            "type": "webhook",
            "format": "webhook",
            "url": "https://hooks.example.com/alerts",
        },
    }
    result = dict(base[kind])
    result.update(overrides)
    return result


def every_secret_webhook() -> Target:
    return parse_target(
        raw_target(
            "webhook",
            bearer_token=BEARER,
            signing_secret=SIGNING,
            basic_auth={"username": "alice", "password": PASSWORD},
            headers={"Authorization": AUTH_HEADER, "X-API-Key": API_KEY_HEADER, "X-Team": "sre"},
        )
    )


def alert(
    labels: dict[str, str] | None = None,
    status: str = "firing",
    classification: str | None = None,
) -> EnrichedAlert:
    all_labels = {"alertname": "HighLatency", **(labels or {})}
    return EnrichedAlert(
        Alert(
            fingerprint="fp1",
            alert_name="HighLatency",
            status=AlertStatus(status),
            labels=all_labels,
            annotations={},
            starts_at=datetime(2024, 5, 1, tzinfo=UTC),
        ),
        Classification(Severity(classification), 0.8) if classification else None,
    )


def write(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


# --- parse_target ---------------------------------------------------------------------


def test_spec_example_parses() -> None:
    pagerduty, webhook = [parse_target(t) for t in yaml.safe_load(SPEC_EXAMPLE)["targets"]]
    assert (pagerduty.name, pagerduty.type, pagerduty.format) == (
        "pagerduty-prod",
        TargetType.PAGERDUTY,
        TargetFormat.PAGERDUTY,
    )
    assert pagerduty.routing_key == ROUTING_KEY
    assert pagerduty.filter.severity == frozenset({"critical", "warning"})
    assert pagerduty.enabled is True
    assert (webhook.bearer_token, webhook.signing_secret) == (BEARER, SIGNING)


@pytest.mark.parametrize(
    ("raw", "expected_type", "expected_format"),
    [
        pytest.param(raw_target("pagerduty"), TargetType.PAGERDUTY, TargetFormat.PAGERDUTY, id="pagerduty"),
        pytest.param(raw_target("slack"), TargetType.SLACK, TargetFormat.SLACK, id="slack"),
        pytest.param(raw_target("rootly"), TargetType.ROOTLY, TargetFormat.ROOTLY, id="rootly"),
        pytest.param(raw_target("webhook"), TargetType.WEBHOOK, TargetFormat.WEBHOOK, id="webhook"),
        pytest.param(raw_target("webhook", format="alertmanager"), TargetType.WEBHOOK, TargetFormat.ALERTMANAGER, id="webhook-alertmanager"),
        pytest.param(raw_target("slack", format=None), TargetType.SLACK, TargetFormat.SLACK, id="format-defaults-to-type"),
        pytest.param(raw_target("webhook", url="http://10.0.0.5:8080/hook"), TargetType.WEBHOOK, TargetFormat.WEBHOOK, id="plain-http"),
    ],
)  # fmt: skip
def test_valid_targets(raw: dict[str, Any], expected_type: TargetType, expected_format: TargetFormat) -> None:
    target = parse_target(raw)
    assert (target.type, target.format) == (expected_type, expected_format)
    assert target.url == raw["url"]


def test_optional_fields() -> None:
    target = parse_target(
        raw_target(
            "webhook",
            name="a" * 63,
            enabled=False,
            timeout_s=2.5,
            headers={"X-Team": "sre"},
            basic_auth={"username": "alice", "password": PASSWORD},
        )
    )
    assert target.name == "a" * 63
    assert target.enabled is False
    assert target.timeout_s == 2.5
    assert target.headers == {"X-Team": "sre"}
    assert target.basic_auth is not None
    assert (target.basic_auth.username, target.basic_auth.password) == ("alice", PASSWORD)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(raw_target(name="Ops-Webhook"), "DNS-1123", id="name-upper-case"),
        pytest.param(raw_target(name="ops_webhook"), "DNS-1123", id="name-underscore"),
        pytest.param(raw_target(name="a" * 64), "DNS-1123", id="name-64-chars"),
        pytest.param(raw_target(name="-ops"), "DNS-1123", id="name-leading-dash"),
        pytest.param(raw_target(name=""), "DNS-1123", id="name-empty"),
        pytest.param({k: v for k, v in raw_target().items() if k != "name"}, "DNS-1123", id="name-missing"),
        pytest.param(raw_target("slack", format="pagerduty"), "type slack takes format", id="slack-with-pagerduty-format"),
        pytest.param(raw_target("pagerduty", format="webhook"), "type pagerduty takes format", id="pagerduty-with-webhook-format"),
        pytest.param(raw_target("rootly", format="alertmanager"), "type rootly takes format", id="rootly-with-alertmanager-format"),
        pytest.param(raw_target(type="carrier-pigeon"), "type must be one of", id="unknown-type"),
        pytest.param(raw_target(format="xml"), "format must be one of", id="unknown-format"),
        pytest.param(raw_target("pagerduty", routing_key=None), "needs routing_key", id="pagerduty-without-routing-key"),
        pytest.param(raw_target("pagerduty", routing_key=""), "routing_key", id="pagerduty-empty-routing-key"),
        pytest.param(raw_target("rootly", api_token=None), "needs api_token", id="rootly-without-api-token"),
        pytest.param(raw_target(url="ftp://hooks.example.com/alerts"), "http:// or https://", id="ftp-url"),
        pytest.param(raw_target(url="hooks.example.com/alerts"), "http:// or https://", id="url-without-scheme"),
        pytest.param(raw_target(url="https://"), "http:// or https://", id="url-without-host"),
        pytest.param(raw_target(url=None), "url", id="url-missing"),
        pytest.param(raw_target(routingkey="x"), "unknown keys ['routingkey']", id="unknown-key"),
        pytest.param(raw_target(filter={"labels_regex": {"env": "(prod"}}), "filter.labels_regex.env is not a valid regex", id="bad-regex"),
        pytest.param(raw_target(filter={"label": {"env": "prod"}}), "filter has unknown keys ['label']", id="bad-filter-key"),
        pytest.param(raw_target(filter={"status": ["pending"]}), "filter.status", id="bad-filter-status"),
        pytest.param(raw_target(filter={"severity": [1]}), "filter.severity", id="filter-severity-not-strings"),
        pytest.param(raw_target(filter=["labels"]), "filter must be a mapping", id="filter-not-mapping"),
        pytest.param(raw_target(enabled="yes"), "enabled", id="enabled-not-bool"),
        pytest.param(raw_target(timeout_s=0), "timeout_s", id="timeout-zero"),
        pytest.param(raw_target(timeout_s=True), "timeout_s", id="timeout-bool"),
        pytest.param(raw_target(headers={"X-Retries": 3}), "headers", id="header-not-string"),
        pytest.param(raw_target(basic_auth={"username": "alice"}), "basic_auth", id="basic-auth-without-password"),
        pytest.param("just a string", "mapping", id="not-a-mapping"),
    ],
)  # fmt: skip
def test_invalid_targets_name_the_problem(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(raw_target("pagerduty", format="slack"), id="bad-format"),
        pytest.param(raw_target("pagerduty", url="ftp://x"), id="bad-url"),
        pytest.param(raw_target("pagerduty", extra=1), id="unknown-key"),
        pytest.param(raw_target("pagerduty", filter={"labels_regex": {"a": "("}}), id="bad-regex"),
    ],
)
def test_validation_errors_name_the_target_but_not_its_secret(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target(raw, "targets.yaml")
    assert "pagerduty-prod" in str(caught.value)
    assert "targets.yaml" in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)


# --- filters ------------------------------------------------------------------------------


def matches(filter_: dict[str, Any] | None, enriched: EnrichedAlert) -> bool:
    return parse_target(raw_target(filter=filter_)).filter.matches(enriched)


@pytest.mark.parametrize(
    ("filter_", "enriched", "expected"),
    [
        pytest.param(None, alert(), True, id="no-filter-matches-all"),
        pytest.param({}, alert(status="resolved"), True, id="empty-filter-matches-all"),
        pytest.param({"labels": {"env": "prod"}}, alert({"env": "prod"}), True, id="labels-exact"),
        pytest.param({"labels": {"env": "prod"}}, alert({"env": "production"}), False, id="labels-not-prefix"),
        pytest.param({"labels": {"env": "prod"}}, alert({"env": "Prod"}), False, id="labels-case"),
        pytest.param({"labels": {"env": "prod"}}, alert(), False, id="labels-absent"),
        pytest.param({"labels": {"env": "prod", "team": "db"}}, alert({"env": "prod"}), False, id="labels-all-must-match"),
        pytest.param({"labels_regex": {"env": "prod.*"}}, alert({"env": "production"}), True, id="regex-full-match"),
        pytest.param({"labels_regex": {"env": "prod"}}, alert({"env": "production"}), False, id="regex-partial-is-no-match"),
        pytest.param({"labels_regex": {"env": "prod"}}, alert({"env": "preprod"}), False, id="regex-suffix-is-no-match"),
        pytest.param({"labels_regex": {"env": "prod|staging"}}, alert({"env": "staging"}), True, id="regex-alternation"),
        pytest.param({"labels_regex": {"env": "prod|staging"}}, alert({"env": "prod-eu"}), False, id="regex-alternation-anchored"),
        pytest.param({"severity": ["critical"]}, alert({"severity": "critical"}), True, id="severity-label"),
        pytest.param({"severity": ["critical"]}, alert({"severity": "warning"}), False, id="severity-label-other"),
        pytest.param({"severity": ["critical"]}, alert(), False, id="severity-absent"),
        pytest.param({"severity": ["critical"]}, alert({"severity": "info"}, classification="critical"), True, id="severity-classification-wins"),
        pytest.param({"severity": ["critical"]}, alert({"severity": "critical"}, classification="noise"), False, id="severity-classification-overrides-label"),
        pytest.param({"severity": "warning"}, alert({"severity": "warning"}), True, id="severity-as-string"),
        pytest.param({"status": ["firing"]}, alert(status="firing"), True, id="status-firing"),
        pytest.param({"status": ["firing"]}, alert(status="resolved"), False, id="status-resolved-excluded"),
        pytest.param(
            {"labels": {"team": "db"}, "severity": ["critical"], "status": ["firing"]},
            alert({"team": "db", "severity": "critical"}, status="resolved"),
            False,
            id="every-key-must-match",
        ),
    ],
)  # fmt: skip
def test_filters(filter_: dict[str, Any] | None, enriched: EnrichedAlert, expected: bool) -> None:
    assert matches(filter_, enriched) is expected


# --- loading --------------------------------------------------------------------------------


def test_load_yaml_file(tmp_path: Path) -> None:
    targets = load_targets(write(tmp_path / "targets.yaml", SPEC_EXAMPLE))
    assert [t.name for t in targets] == ["pagerduty-prod", "ops-webhook"]


def test_load_json_file(tmp_path: Path) -> None:
    document = {"targets": [raw_target("slack"), raw_target("rootly")]}
    targets = load_targets(write(tmp_path / "targets.json", json.dumps(document)))
    assert [t.name for t in targets] == ["slack-ops", "rootly"]


def test_load_single_object_file(tmp_path: Path) -> None:
    [target] = load_targets(write(tmp_path / "pd.yml", yaml.safe_dump(raw_target("pagerduty"))))
    assert target.name == "pagerduty-prod"


def test_load_directory_like_a_kubernetes_secret_volume(tmp_path: Path) -> None:
    # kubelet's layout: files are symlinks into ..data, which points at a timestamped dir.
    stamp = tmp_path / "..2024_05_01_10_00_00.123"
    stamp.mkdir()
    write(stamp / "pagerduty.yaml", yaml.safe_dump(raw_target("pagerduty")))
    write(stamp / "slack.json", json.dumps(raw_target("slack")))
    (tmp_path / "..data").symlink_to(stamp.name)
    (tmp_path / "pagerduty.yaml").symlink_to("..data/pagerduty.yaml")
    (tmp_path / "slack.json").symlink_to("..data/slack.json")
    write(tmp_path / ".hidden.yaml", yaml.safe_dump(raw_target("webhook", name="hidden")))
    write(tmp_path / "README.txt", "not a target")

    targets = load_targets(tmp_path)

    assert sorted(t.name for t in targets) == ["pagerduty-prod", "slack-ops"]


def test_duplicate_names_across_files_are_rejected(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", yaml.safe_dump(raw_target("webhook")))
    write(tmp_path / "b.yaml", yaml.safe_dump(raw_target("webhook", url="https://other.example.com")))
    with pytest.raises(ConfigError, match="'ops-webhook' is defined twice"):
        load_targets(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("targets: [\n  - name: x\n  bad", "not valid YAML or JSON", id="broken-yaml"),
        pytest.param('{"targets": {"name": "x"}}', "targets must be a list", id="targets-not-list"),
        pytest.param(
            yaml.safe_dump({"targets": [raw_target(name="Bad")]}), "targets[0]", id="names-the-item"
        ),
    ],
)
def test_bad_files_name_the_file_and_problem(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_targets(write(tmp_path / "broken.yaml", content))
    assert "broken.yaml" in str(caught.value)
    assert message in str(caught.value)


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_targets(tmp_path / "nope.yaml")


# --- the registry -------------------------------------------------------------------------


def registry_in(tmp_path: Path) -> tuple[TargetRegistry, FrozenClock]:
    clock = FrozenClock(start=100.0)
    return TargetRegistry(source=TargetFiles(tmp_path), monotonic=clock, check_interval_s=1.0), clock


def bump_mtime(path: Path) -> None:
    # Make the change visible even on a file system with coarse timestamps.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_registry_picks_up_a_new_file_after_the_interval(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", yaml.safe_dump(raw_target("webhook")))
    registry, clock = registry_in(tmp_path)
    write(tmp_path / "b.yaml", yaml.safe_dump(raw_target("slack")))

    clock.advance(0.5)
    assert registry.reload_if_changed(force=False) is False
    with pytest.raises(UnknownTargetError):
        registry.get("slack-ops")

    clock.advance(1.0)
    assert registry.reload_if_changed(force=False) is True
    assert registry.get("slack-ops").type is TargetType.SLACK
    assert sorted(t.name for t in registry.all()) == ["ops-webhook", "slack-ops"]
    assert registry.last_error is None


def test_registry_keeps_the_last_good_set_on_a_broken_edit(tmp_path: Path) -> None:
    file = write(tmp_path / "a.yaml", yaml.safe_dump(raw_target("webhook")))
    registry, clock = registry_in(tmp_path)

    write(file, yaml.safe_dump(raw_target("webhook", name="Broken_Name")))
    bump_mtime(file)
    clock.advance(2)

    assert registry.reload_if_changed(force=False) is False
    assert [t.name for t in registry.all()] == ["ops-webhook"]
    assert registry.last_error is not None
    assert "DNS-1123" in registry.last_error

    write(file, yaml.safe_dump(raw_target("webhook", name="fixed-webhook")))
    bump_mtime(file)
    clock.advance(2)
    assert registry.reload_if_changed(force=False) is True
    assert [t.name for t in registry.all()] == ["fixed-webhook"]
    assert registry.last_error is None


def test_registry_matching_skips_disabled_and_unmatched_targets() -> None:
    registry = TargetRegistry(
        [
            parse_target(raw_target("webhook", name="all")),
            parse_target(raw_target("webhook", name="off", enabled=False)),
            parse_target(raw_target("webhook", name="db-only", filter={"labels": {"team": "db"}})),
        ]
    )
    assert [t.name for t in registry.matching(alert({"team": "web"}))] == ["all"]
    assert [t.name for t in registry.matching(alert({"team": "db"}), names=["db-only"])] == ["db-only"]
    with pytest.raises(UnknownTargetError):
        registry.matching(alert(), names=["missing"])


# --- redaction ------------------------------------------------------------------------------

ALL_SECRETS = [ROUTING_KEY, BEARER, SIGNING, ROOTLY_TOKEN, PASSWORD, AUTH_HEADER, API_KEY_HEADER, SLACK_URL]


def leaked(text: str) -> list[str]:
    fragments = [*ALL_SECRETS, "hdr-auth-5ecret", SLACK_SECRET_PATH]
    return [s for s in fragments if s in text]


REDACTION_TARGETS = [
    pytest.param(lambda: parse_target(raw_target("pagerduty")), id="pagerduty"),
    pytest.param(lambda: parse_target(raw_target("rootly")), id="rootly"),
    pytest.param(lambda: parse_target(raw_target("slack")), id="slack"),
    pytest.param(every_secret_webhook, id="webhook-every-secret"),
]


@pytest.mark.parametrize("build", REDACTION_TARGETS)
def test_repr_and_public_dict_hide_every_secret(build: Any) -> None:
    target: Target = build()
    assert leaked(repr(target)) == []
    assert leaked(str(target)) == []
    assert leaked(json.dumps(target.to_public_dict())) == []
    assert target.to_public_dict()["name"] == target.name


def test_public_dict_shows_redacted_markers_and_keeps_harmless_values() -> None:
    public = every_secret_webhook().to_public_dict()
    assert public["bearer_token"] == "***"
    assert public["signing_secret"] == "***"
    assert public["basic_auth"] == {"username": "alice", "password": "***"}
    assert public["headers"] == {"Authorization": "***", "X-API-Key": "***", "X-Team": "sre"}
    assert public["url"] == "https://hooks.example.com/***"


def test_slack_public_url_keeps_only_the_host() -> None:
    public = parse_target(raw_target("slack")).to_public_dict()
    assert public["url"] == "https://hooks.slack.com/***"


@pytest.mark.parametrize(
    ("build", "secrets"),
    [
        pytest.param(lambda: parse_target(raw_target("pagerduty")), [ROUTING_KEY], id="pagerduty"),
        pytest.param(lambda: parse_target(raw_target("rootly")), [ROOTLY_TOKEN], id="rootly"),
        pytest.param(lambda: parse_target(raw_target("slack")), [SLACK_URL], id="slack"),
        pytest.param(
            every_secret_webhook,
            [BEARER, SIGNING, PASSWORD, AUTH_HEADER, API_KEY_HEADER],
            id="webhook-every-secret",
        ),
    ],
)
def test_redact_removes_the_targets_secrets_from_text(build: Any, secrets: list[str]) -> None:
    target: Target = build()
    text = "attempt failed: " + " | ".join(f"value={s}" for s in secrets)
    redacted = target.redact(text)
    assert [s for s in secrets if s in redacted] == []
    assert redacted.count("***") == len(secrets)
    assert redacted.startswith("attempt failed: value=")


def test_redact_covers_every_webhook_secret() -> None:
    target = every_secret_webhook()
    text = (
        f"POST https://hooks.example.com/alerts headers={{'Authorization': '{AUTH_HEADER}', "
        f"'X-API-Key': '{API_KEY_HEADER}'}} bearer {BEARER} sig {SIGNING} pass {PASSWORD}"
    )
    assert leaked(target.redact(text)) == []


def test_redact_hides_the_slack_webhook_path_in_a_requests_error() -> None:
    # urllib3 names the host and the path separately; the path is the Slack secret.
    target = parse_target(raw_target("slack"))
    message = (
        "HTTPSConnectionPool(host='hooks.slack.com', port=443): Max retries exceeded with url: "
        f"/services/{SLACK_SECRET_PATH} (Caused by NewConnectionError('connection refused'))"
    )
    assert SLACK_SECRET_PATH not in target.redact(message)


def test_redact_hides_a_password_in_the_url() -> None:
    target = parse_target(raw_target("webhook", url=f"https://bob:{PASSWORD}@hooks.example.com/alerts"))
    assert PASSWORD not in repr(target)
    assert PASSWORD not in json.dumps(target.to_public_dict())
    assert PASSWORD not in target.redact(f"POST {target.url} failed: connection refused")
