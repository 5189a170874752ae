"""Settings from the environment (the README, "Configuration"): defaults, every variable, and bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from publishing.breaker import BreakerConfig
from publishing.errors import ConfigError
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.settings import Settings, normalise_database_url, parse_api_tokens, redact_url

ADMIN_TOKEN = "9f2c4e6a8b0d1f3a5c7e"
OPERATOR_TOKEN = "77ab99cd11ef33aa55bb"
READER_TOKEN = "reader-token-0123456789"


def settings(**environ: str) -> Settings:
    return Settings.from_env(environ)


def test_defaults_are_those_of_the_spec() -> None:
    s = settings()
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.database_url.startswith("sqlite:///")
    assert "var/" in s.database_url
    assert s.targets_path is None
    assert s.api_tokens == {}
    for priority in Priority:
        assert s.retry_policy(priority) == RetryPolicy(
            max_retries=5, base_s=1, max_backoff_s=60, jitter_s=1, retry_after_max_s=300
        )
    assert s.http_timeout_s == 10
    assert s.breaker == BreakerConfig(
        failure_threshold=5,
        open_timeout_s=30,
        half_open_probes=1,
        success_threshold=2,
        max_deferral_s=3600,
    )
    assert s.tracking_capacity == 10_000
    assert s.tracking_ttl_s == 86_400
    assert s.dedup_window_s == 300
    assert s.max_body_bytes == 1_048_576
    assert s.max_alerts_per_request == 1_000


@pytest.mark.parametrize(
    ("name", "value", "read", "expected"),
    [
        pytest.param("REDIS_URL", "redis://cache:6380/3", lambda s: s.redis_url, "redis://cache:6380/3", id="REDIS_URL"),
        pytest.param("DATABASE_URL", "sqlite:///tmp/x.db", lambda s: s.database_url, "sqlite:///tmp/x.db", id="DATABASE_URL"),
        pytest.param("PUBLISHING_TARGETS", "/etc/publishing/targets", lambda s: s.targets_path, Path("/etc/publishing/targets"), id="PUBLISHING_TARGETS"),
        pytest.param("PUBLISHING_API_TOKENS", f"admin:{ADMIN_TOKEN}", lambda s: dict(s.api_tokens), {ADMIN_TOKEN: "admin"}, id="PUBLISHING_API_TOKENS"),
        pytest.param("PUBLISHING_MAX_RETRIES", "7", lambda s: [s.retry[p].max_retries for p in Priority], [7, 7, 7], id="MAX_RETRIES"),
        pytest.param("PUBLISHING_RETRY_BASE_S", "0.5", lambda s: [s.retry[p].base_s for p in Priority], [0.5] * 3, id="RETRY_BASE_S"),
        pytest.param("PUBLISHING_RETRY_MAX_BACKOFF_S", "120", lambda s: s.retry[Priority.MEDIUM].max_backoff_s, 120, id="RETRY_MAX_BACKOFF_S"),
        pytest.param("PUBLISHING_RETRY_JITTER_S", "2.5", lambda s: s.retry[Priority.LOW].jitter_s, 2.5, id="RETRY_JITTER_S"),
        pytest.param("PUBLISHING_RETRY_AFTER_MAX_S", "120", lambda s: s.retry[Priority.HIGH].retry_after_max_s, 120, id="RETRY_AFTER_MAX_S"),
        pytest.param("PUBLISHING_HTTP_TIMEOUT_S", "3.5", lambda s: s.http_timeout_s, 3.5, id="HTTP_TIMEOUT_S"),
        pytest.param("PUBLISHING_BREAKER_FAILURE_THRESHOLD", "9", lambda s: s.breaker.failure_threshold, 9, id="BREAKER_FAILURE_THRESHOLD"),
        pytest.param("PUBLISHING_BREAKER_OPEN_TIMEOUT_S", "45", lambda s: s.breaker.open_timeout_s, 45, id="BREAKER_OPEN_TIMEOUT_S"),
        pytest.param("PUBLISHING_BREAKER_HALF_OPEN_PROBES", "3", lambda s: s.breaker.half_open_probes, 3, id="BREAKER_HALF_OPEN_PROBES"),
        pytest.param("PUBLISHING_BREAKER_SUCCESS_THRESHOLD", "4", lambda s: s.breaker.success_threshold, 4, id="BREAKER_SUCCESS_THRESHOLD"),
        pytest.param("PUBLISHING_BREAKER_MAX_DEFERRAL_S", "600", lambda s: s.breaker.max_deferral_s, 600, id="BREAKER_MAX_DEFERRAL_S"),
        pytest.param("PUBLISHING_TRACKING_CAPACITY", "500", lambda s: s.tracking_capacity, 500, id="TRACKING_CAPACITY"),
        pytest.param("PUBLISHING_TRACKING_TTL_S", "3600", lambda s: s.tracking_ttl_s, 3600, id="TRACKING_TTL_S"),
        pytest.param("PUBLISHING_DEDUP_WINDOW_S", "60", lambda s: s.dedup_window_s, 60, id="DEDUP_WINDOW_S"),
        pytest.param("PUBLISHING_MAX_BODY_BYTES", "2048", lambda s: s.max_body_bytes, 2048, id="MAX_BODY_BYTES"),
        pytest.param("PUBLISHING_MAX_ALERTS_PER_REQUEST", "10", lambda s: s.max_alerts_per_request, 10, id="MAX_ALERTS_PER_REQUEST"),
        pytest.param("PUBLISHING_VISIBILITY_TIMEOUT_S", "7200", lambda s: s.visibility_timeout_s, 7200, id="VISIBILITY_TIMEOUT_S"),
        pytest.param("PUBLISHING_KEY_PREFIX", "pub-test", lambda s: s.key_prefix, "pub-test", id="KEY_PREFIX"),
        pytest.param("PUBLISHING_INSECURE_NO_AUTH", "1", lambda s: s.insecure_no_auth, True, id="INSECURE_NO_AUTH"),
    ],
)  # fmt: skip
def test_every_variable_is_read(name: str, value: str, read: Any, expected: Any) -> None:
    assert read(settings(**{name: value})) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {"PUBLISHING_HIGH_MAX_RETRIES": "10"},
            {Priority.HIGH: 10, Priority.MEDIUM: 5, Priority.LOW: 5},
            id="high-max-retries-only-high",
        ),
        pytest.param(
            {"PUBLISHING_MAX_RETRIES": "3", "PUBLISHING_LOW_MAX_RETRIES": "1"},
            {Priority.HIGH: 3, Priority.MEDIUM: 3, Priority.LOW: 1},
            id="override-beats-global",
        ),
    ],
)
def test_per_priority_max_retries(environ: dict[str, str], expected: dict[Priority, int]) -> None:
    s = settings(**environ)
    assert {p: s.retry_policy(p).max_retries for p in Priority} == expected


def test_per_priority_retry_base() -> None:
    s = settings(PUBLISHING_LOW_RETRY_BASE_S="4", PUBLISHING_RETRY_BASE_S="2")
    assert s.retry_policy(Priority.LOW).base_s == 4
    assert s.retry_policy(Priority.MEDIUM).base_s == 2
    assert s.retry_policy(Priority.HIGH).base_s == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("PUBLISHING_MAX_RETRIES", "abc", id="max-retries-word"),
        pytest.param("PUBLISHING_MAX_RETRIES", "-1", id="max-retries-negative"),
        pytest.param("PUBLISHING_MAX_RETRIES", "2.5", id="max-retries-fraction"),
        pytest.param("PUBLISHING_HIGH_MAX_RETRIES", "many", id="per-priority-word"),
        pytest.param("PUBLISHING_LOW_RETRY_BASE_S", "-0.5", id="per-priority-negative"),
        pytest.param("PUBLISHING_HTTP_TIMEOUT_S", "0", id="http-timeout-zero"),
        pytest.param("PUBLISHING_HTTP_TIMEOUT_S", "nan", id="http-timeout-nan"),
        pytest.param("PUBLISHING_HTTP_TIMEOUT_S", "inf", id="http-timeout-inf"),
        pytest.param("PUBLISHING_RETRY_JITTER_S", "nan", id="jitter-nan"),
        pytest.param("PUBLISHING_BREAKER_FAILURE_THRESHOLD", "0", id="failure-threshold-zero"),
        pytest.param("PUBLISHING_BREAKER_HALF_OPEN_PROBES", "0", id="probes-zero"),
        pytest.param("PUBLISHING_TRACKING_CAPACITY", "lots", id="capacity-word"),
        pytest.param("PUBLISHING_MAX_BODY_BYTES", "1MB", id="body-with-unit"),
    ],
)
def test_bad_values_name_the_variable_and_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**{name: value})
    message = str(caught.value)
    assert name in message
    assert repr(value) in message
    assert "expected" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("postgresql://u@h/db", "postgresql+psycopg2://u@h/db", id="postgresql"),
        pytest.param("postgres://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db", id="postgres"),
        pytest.param("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db", id="already-explicit"),
        pytest.param("sqlite:///var/x.db", "sqlite:///var/x.db", id="sqlite-untouched"),
    ],
)
def test_database_url_picks_psycopg2(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected
    assert settings(DATABASE_URL=url).database_url == expected


def test_api_tokens_map_tokens_to_roles() -> None:
    raw = f"admin:{ADMIN_TOKEN}, operator:{OPERATOR_TOKEN},reader:{READER_TOKEN},"
    assert parse_api_tokens(raw) == {ADMIN_TOKEN: "admin", OPERATOR_TOKEN: "operator", READER_TOKEN: "reader"}
    assert parse_api_tokens("") == {}


@pytest.mark.parametrize(
    ("raw", "secret", "message"),
    [
        pytest.param(f"root:{ADMIN_TOKEN}", ADMIN_TOKEN, "reader|operator|admin", id="bad-role"),
        pytest.param(f"Admin:{ADMIN_TOKEN}", ADMIN_TOKEN, "reader|operator|admin", id="role-case"),
        pytest.param(ADMIN_TOKEN, ADMIN_TOKEN, "ROLE:TOKEN", id="no-role"),
        pytest.param("admin:short-tok", "short-tok", "shorter than 16", id="short-token"),
        pytest.param(f"admin:{ADMIN_TOKEN},operator:abc123", "abc123", "entry 2", id="second-entry-short"),
    ],
)
def test_bad_api_tokens_never_echo_the_token(raw: str, secret: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(PUBLISHING_API_TOKENS=raw)
    assert "PUBLISHING_API_TOKENS" in str(caught.value)
    assert message in str(caught.value)
    assert secret not in str(caught.value)
    assert ADMIN_TOKEN not in str(caught.value)


def test_the_insecure_switch_is_off_unless_set() -> None:
    assert settings().insecure_no_auth is False
    for off in ("", "0", "false", "no"):
        assert settings(PUBLISHING_INSECURE_NO_AUTH=off).insecure_no_auth is False
    for on in ("1", "true", "yes", "TRUE"):
        assert settings(PUBLISHING_INSECURE_NO_AUTH=on).insecure_no_auth is True


def test_a_bad_insecure_switch_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="PUBLISHING_INSECURE_NO_AUTH='perhaps'"):
        settings(PUBLISHING_INSECURE_NO_AUTH="perhaps")


def test_the_api_needs_tokens_or_the_insecure_switch() -> None:
    with pytest.raises(ConfigError) as caught:
        settings().check_api_access()
    message = str(caught.value)
    assert "PUBLISHING_API_TOKENS" in message and "PUBLISHING_INSECURE_NO_AUTH=1" in message
    assert "\n" not in message
    settings(PUBLISHING_API_TOKENS=f"admin:{ADMIN_TOKEN}").check_api_access()
    settings(PUBLISHING_INSECURE_NO_AUTH="1").check_api_access()


def test_settings_repr_hides_the_tokens() -> None:
    s = settings(PUBLISHING_API_TOKENS=f"admin:{ADMIN_TOKEN}")
    assert ADMIN_TOKEN not in repr(s)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"PUBLISHING_VISIBILITY_TIMEOUT_S": "100"}, id="shorter-than-twice-the-backoff-cap"),
        pytest.param({"PUBLISHING_LOW_RETRY_MAX_BACKOFF_S": "200"}, id="per-priority-backoff-too-long"),
        pytest.param({"PUBLISHING_RETRY_MAX_BACKOFF_S": "150"}, id="backoff-cap-too-long"),
    ],
)
def test_visibility_timeout_must_outlast_twice_the_longest_backoff(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**environ)
    assert "PUBLISHING_VISIBILITY_TIMEOUT_S" in str(caught.value)


def test_visibility_timeout_of_exactly_twice_the_longest_backoff_is_accepted() -> None:
    s = settings(PUBLISHING_VISIBILITY_TIMEOUT_S="122")  # default backoff cap 60 s + jitter 1 s
    assert s.visibility_timeout_s == 122
    assert s.max_hold_s == 61


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cr3t-pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("postgresql+psycopg2://app:s3cr3t-pw@db/alerts", "postgresql+psycopg2://app:***@db/alerts"),
        (
            "sentinel://:s3cr3t-pw@s1:26379;sentinel://:s3cr3t-pw@s2:26379",
            "sentinel://:***@s1:26379;sentinel://:***@s2:26379",
        ),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ],
)
def test_settings_never_show_a_password(url: str, shown: str) -> None:
    settings = Settings.from_env({"REDIS_URL": url, "DATABASE_URL": "postgresql://app:s3cr3t-pw@db/alerts"})
    assert "s3cr3t-pw" not in repr(settings) and "s3cr3t-pw" not in str(settings)
    assert redact_url(url) == shown


# --- X_FILE: a setting read from a file (Docker and Kubernetes secrets) ---


@pytest.mark.parametrize(
    ("name", "content", "read", "expected"),
    [
        pytest.param("REDIS_URL", "redis://:s3cr3t-pw@redis:6379/0\n", lambda s: s.redis_url, "redis://:s3cr3t-pw@redis:6379/0", id="REDIS_URL"),
        pytest.param("DATABASE_URL", "postgresql://app:pw@db/alerts\n", lambda s: s.database_url, "postgresql+psycopg2://app:pw@db/alerts", id="DATABASE_URL"),
        pytest.param("PUBLISHING_API_TOKENS", f"admin:{ADMIN_TOKEN}\n", lambda s: dict(s.api_tokens), {ADMIN_TOKEN: "admin"}, id="PUBLISHING_API_TOKENS"),
        pytest.param("PUBLISHING_HTTP_TIMEOUT_S", "3.5", lambda s: s.http_timeout_s, 3.5, id="any-PUBLISHING-knob"),
    ],
)  # fmt: skip
def test_a_setting_may_come_from_the_file_its_FILE_variable_names(
    tmp_path: Path, name: str, content: str, read: Any, expected: Any
) -> None:
    path = tmp_path / "secret"
    path.write_text(content)
    assert read(settings(**{f"{name}_FILE": str(path)})) == expected


def test_a_FILE_variable_and_its_plain_variable_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "redis_url"
    path.write_text("redis://:s3cr3t-pw@redis:6379/0")
    with pytest.raises(ConfigError) as caught:
        settings(REDIS_URL="redis://other:6379/0", REDIS_URL_FILE=str(path))
    assert "REDIS_URL" in str(caught.value) and "REDIS_URL_FILE" in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank"])
def test_an_unreadable_or_empty_secret_file_fails_naming_the_variable(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "tokens"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        settings(PUBLISHING_API_TOKENS_FILE=str(path))
    assert "PUBLISHING_API_TOKENS_FILE" in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_values_from_a_file_never_echo_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("admin:short-secret")
    with pytest.raises(ConfigError) as caught:
        settings(PUBLISHING_API_TOKENS_FILE=str(path))
    assert "PUBLISHING_API_TOKENS" in str(caught.value)
    assert "short-secret" not in str(caught.value)


# --- caps on each alert (docs/design.md (Alerts)) ---

FIELD_LIMIT_VARIABLES = [
    ("PUBLISHING_MAX_LABELS", "max_labels", 64),
    ("PUBLISHING_MAX_ANNOTATIONS", "max_annotations", 64),
    ("PUBLISHING_MAX_LABEL_NAME_CHARS", "max_name_chars", 256),
    ("PUBLISHING_MAX_VALUE_CHARS", "max_value_chars", 8192),
    ("PUBLISHING_MAX_METADATA_DEPTH", "max_metadata_depth", 16),
    ("PUBLISHING_MAX_METADATA_BYTES", "max_metadata_bytes", 65_536),
]


def test_field_limits_default_to_those_of_the_design() -> None:
    from publishing.alert import FieldLimits

    limits = settings().field_limits
    assert limits == FieldLimits()
    assert [getattr(limits, attribute) for _, attribute, _ in FIELD_LIMIT_VARIABLES] == [
        default for _, _, default in FIELD_LIMIT_VARIABLES
    ]
    assert limits.max_fingerprint_chars == 255


@pytest.mark.parametrize(("name", "attribute", "default"), FIELD_LIMIT_VARIABLES)
def test_every_field_limit_is_read(name: str, attribute: str, default: int) -> None:
    limits = settings(**{name: "7"}).field_limits
    assert getattr(limits, attribute) == 7
    assert limits.max_fingerprint_chars == 255


@pytest.mark.parametrize(("name", "attribute", "default"), FIELD_LIMIT_VARIABLES)
@pytest.mark.parametrize("raw", ["0", "-1", "lots", "2.5"])
def test_a_bad_field_limit_names_the_variable(name: str, attribute: str, default: int, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}={raw!r} is not valid"):
        settings(**{name: raw})


STARTS_AT = "2026-01-01T00:00:00Z"


def _alert_api(environ: dict[str, str]) -> Any:
    from api import create_app
    from api.testing import TOKENS, in_memory_api

    mem = in_memory_api([{"name": "hook", "type": "webhook", "url": "https://hooks.example.com/"}])
    environ = {"PUBLISHING_API_TOKENS": f"operator:{TOKENS['operator']}", **environ}
    app = create_app(settings(**environ), mem.services)
    return app.test_client(), {"Authorization": f"Bearer {TOKENS['operator']}"}, mem


@pytest.mark.parametrize(
    ("environ", "labels", "annotations", "field"),
    [
        ({"PUBLISHING_MAX_LABELS": "2"}, {"alertname": "A", "a": "1", "b": "2"}, {}, "alerts[0].labels"),
        ({"PUBLISHING_MAX_ANNOTATIONS": "1"}, {"alertname": "A"}, {"x": "1", "y": "22"}, "alerts[0].annotations"),
        ({"PUBLISHING_MAX_LABEL_NAME_CHARS": "5"}, {"alertname": "A"}, {}, "alerts[0].labels"),
        ({"PUBLISHING_MAX_VALUE_CHARS": "10"}, {"alertname": "A", "job": "x" * 11}, {}, "alerts[0].labels.job"),
    ],
)  # fmt: skip
def test_a_non_default_cap_is_enforced_by_the_webhook_with_the_field_named(
    environ: dict[str, str], labels: dict[str, str], annotations: dict[str, str], field: str
) -> None:
    client, headers, mem = _alert_api(environ)
    alert = {"status": "firing", "labels": labels, "annotations": annotations, "startsAt": STARTS_AT}
    response = client.post("/webhook", json={"alerts": [alert]}, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert field in [p["field"] for p in response.get_json()["details"]["problems"]]
    assert mem.enqueuer.sent == []
    # The same alert passes under the default caps.
    client, headers, mem = _alert_api({})
    assert client.post("/webhook", json={"alerts": [alert]}, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("environ", "metadata"),
    [
        ({"PUBLISHING_MAX_METADATA_DEPTH": "2"}, {"a": {"b": {"c": 1}}}),
        ({"PUBLISHING_MAX_METADATA_BYTES": "20"}, {"note": "x" * 40}),
    ],
)
def test_a_non_default_metadata_cap_is_enforced_by_submit_with_the_field_named(
    environ: dict[str, str], metadata: dict[str, Any]
) -> None:
    client, headers, mem = _alert_api(environ)
    alert = {"alert_name": "A", "status": "firing", "labels": {"alertname": "A"}, "starts_at": STARTS_AT}
    body = {"alert": alert, "enrichment_metadata": metadata}
    response = client.post("/api/v2/publishing/submit", json=body, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert "enrichment_metadata" in [p["field"] for p in response.get_json()["details"]["problems"]]
    assert mem.enqueuer.sent == []


# --- the publish task's time limits (docs/design.md (Retries)) ------------------------------


@pytest.mark.parametrize(
    ("environ", "targets", "soft_s", "hard_s", "source"),
    [
        pytest.param({}, {}, 20.0, 25.0, "PUBLISHING_HTTP_TIMEOUT_S", id="default-10s"),
        pytest.param({"PUBLISHING_HTTP_TIMEOUT_S": "0.2"}, {}, 5.4, 10.4, "PUBLISHING_HTTP_TIMEOUT_S", id="short"),
        pytest.param({}, {"slow": 60.0, "fast": 2.0}, 70.0, 75.0, "target 'slow' timeout_s", id="a-slow-target"),
        pytest.param({}, {"fast": 2.0}, 20.0, 25.0, "PUBLISHING_HTTP_TIMEOUT_S", id="targets-shorter"),
        pytest.param(
            {"PUBLISHING_HTTP_TIMEOUT_S": "3", "PUBLISHING_VISIBILITY_TIMEOUT_S": "10",
             "PUBLISHING_RETRY_MAX_BACKOFF_S": "2", "PUBLISHING_RETRY_JITTER_S": "0.1"},
            {}, 8.0, 9.0, "PUBLISHING_HTTP_TIMEOUT_S", id="capped-below-a-short-visibility-timeout",
        ),
    ],
)  # fmt: skip
def test_time_limits_come_from_the_longest_timeout_in_use(
    environ: dict[str, str], targets: dict[str, float], soft_s: float, hard_s: float, source: str
) -> None:
    from publishing.settings import time_limits

    s = settings(**environ)
    limits = time_limits(s, targets)

    assert (limits.soft_s, limits.hard_s, limits.source) == (
        pytest.approx(soft_s),
        pytest.approx(hard_s),
        source,
    )
    # Every attempt may use its whole timeout, and no run outlives its message's visibility.
    longest_attempt_s = limits.longest_timeout_s + min(limits.longest_timeout_s, 5)
    assert longest_attempt_s < limits.soft_s < limits.hard_s < s.visibility_timeout_s


@pytest.mark.parametrize("timeout", ["90", "150"])
def test_a_long_http_timeout_still_ends_every_run_before_the_visibility_timeout(timeout: str) -> None:
    from publishing.settings import time_limits

    limits = time_limits(settings(PUBLISHING_HTTP_TIMEOUT_S=timeout))

    assert float(timeout) < limits.soft_s < limits.hard_s < 300


def test_an_http_timeout_that_cannot_end_before_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(PUBLISHING_HTTP_TIMEOUT_S="296")
    assert "PUBLISHING_HTTP_TIMEOUT_S=296" in str(caught.value)
    assert "PUBLISHING_VISIBILITY_TIMEOUT_S=300" in str(caught.value)


def test_a_target_timeout_that_cannot_end_before_the_visibility_timeout_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    from workers.config import celery_config

    targets = tmp_path / "targets.yaml"
    targets.write_text(
        "targets:\n"
        "  - {name: quick, type: webhook, url: 'http://127.0.0.1:9/x'}\n"
        "  - {name: glacial, type: webhook, url: 'http://127.0.0.1:9/y', timeout_s: 400}\n"
    )
    with pytest.raises(ConfigError) as caught:
        celery_config(settings(PUBLISHING_TARGETS=str(targets)))
    assert "target 'glacial' timeout_s=400" in str(caught.value)
    assert "PUBLISHING_VISIBILITY_TIMEOUT_S=300" in str(caught.value)


def test_the_worker_takes_its_limits_from_a_targets_own_timeout(tmp_path: Path) -> None:
    from workers.config import celery_config

    targets = tmp_path / "targets.yaml"
    targets.write_text(
        "targets:\n  - {name: slow, type: webhook, url: 'http://127.0.0.1:9/x', timeout_s: 60}\n"
    )
    config = celery_config(settings(PUBLISHING_TARGETS=str(targets)))

    assert config["task_soft_time_limit"] == 70.0
    assert config["task_time_limit"] == 75.0
