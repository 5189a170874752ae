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
