"""A target's URL path and query are secret by default (docs/design.md (Targets and payloads)):
Teams, Discord, Google Chat and most incoming webhooks carry their credential there. Every
output shows scheme, host and port only, unless the target says ``url_is_public: true``."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from api import create_app
from api.testing import bearer, in_memory_api, settings_with_tokens
from publishing.adapters.logs import configure_logging
from publishing.alert import parse_alertmanager
from publishing.breaker import BreakerConfig
from publishing.delivery import DeliveryService, Failed
from publishing.errors import ConfigError, PermanentPublishError
from publishing.job import Job
from publishing.plan import Timings, plan
from publishing.priority import Priority
from publishing.retry import RetryPolicy
from publishing.target_config import parse_target
from publishing.targets import Target, TargetRegistry
from publishing.testing import FrozenClock, InMemoryBreakerStore

PATH_TOKEN = "Zq3kT0KEN8a9b7c6d5e4f3"
QUERY_SIG = "S1Gxx-4f2a9c0e1b7d-secret"
PATH = f"/webhooks/123456/{PATH_TOKEN}"
QUERY = f"sig={QUERY_SIG}&v=1"
URL = f"https://hooks.example.com:8443{PATH}?{QUERY}"
PUBLIC = "https://hooks.example.com:8443/***"
# Every piece of the URL that must not show, alone or together.
NEEDLES = [PATH_TOKEN, QUERY_SIG, PATH, QUERY, f"{PATH}?{QUERY}", "webhooks/123456"]

TEAMS = (
    "https://contoso.webhook.office.com/webhookb2/0c3b5e61-2b5f-4c5e-9d7a-8f6e2a1b3c4d@"
    "72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/9f1c2b3a4d5e6f708192a3b4c5d6e7f8/"
    "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
)
DISCORD = (
    "https://discord.com/api/webhooks/1234567890123456789/aBcD-eFgH_iJkLmNoPqRsTuVwXyZ0123456789abcdefghij"
)
GCHAT = (
    "https://chat.googleapis.com/v1/spaces/AAAA1234bcd/messages"
    "?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token=Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE"
)


def leaks(text: str, needles: list[str] = NEEDLES) -> list[str]:
    return [n for n in needles if n in text]


def target(kind: str = "webhook", url: str = URL, **extra: Any) -> Target:
    config: dict[str, Any] = {"name": f"{kind}-t", "type": kind, "url": url, **extra}
    if kind == "pagerduty":
        config["routing_key"] = "R0UT1NGKEY0123456789abcdef"
    if kind == "rootly":
        config["api_token"] = "rootly-api-t0ken-XYZ"
    return parse_target(config)


KINDS = ["webhook", "pagerduty", "rootly", "slack"]


# --- the target model -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_public_url_keeps_scheme_host_and_port_only(kind: str) -> None:
    subject = target(kind)
    assert subject.public_url == PUBLIC
    assert subject.to_public_dict()["url"] == PUBLIC


@pytest.mark.parametrize("kind", KINDS)
def test_public_dict_and_repr_show_no_piece_of_the_path_or_query(kind: str) -> None:
    subject = target(kind)
    assert leaks(json.dumps(subject.to_public_dict())) == []
    assert leaks(repr(subject)) == []
    assert leaks(str(subject)) == []
    assert "hooks.example.com:8443" in repr(subject)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(TEAMS, id="teams"),
        pytest.param(DISCORD, id="discord"),
        pytest.param(GCHAT, id="google-chat"),
    ],
)
def test_real_world_webhook_urls_show_only_their_host(url: str) -> None:
    subject = target(url=url)
    host = url.split("/")[2]
    assert subject.public_url == f"https://{host}/***"
    rest = url.split(host, 1)[1]
    assert rest not in json.dumps(subject.to_public_dict())
    assert subject.redact(f"POST {url} failed") == f"POST https://{host}/*** failed"


def test_a_url_without_path_or_query_is_shown_whole() -> None:
    for url in ("https://hooks.example.com", "https://hooks.example.com/", "http://127.0.0.1:9/"):
        assert target(url=url).public_url == url


def test_a_password_in_the_url_is_hidden_with_the_path() -> None:
    subject = target(url="https://bob:pa55-in-url@hooks.example.com/alerts/x")
    assert subject.public_url == "https://***@hooks.example.com/***"
    assert "pa55-in-url" not in subject.redact("url https://bob:pa55-in-url@hooks.example.com/alerts/x")


@pytest.mark.parametrize("kind", KINDS)
def test_redact_hides_the_full_url_in_an_error_message_but_keeps_the_host(kind: str) -> None:
    subject = target(kind)
    message = f"ConnectionError: POST {URL} failed: connection refused"
    redacted = subject.redact(message)
    assert leaks(redacted) == []
    assert redacted == f"ConnectionError: POST {PUBLIC} failed: connection refused"


@pytest.mark.parametrize("kind", KINDS)
def test_redact_hides_the_path_alone_as_urllib3_writes_it(kind: str) -> None:
    subject = target(kind)
    message = (
        "HTTPSConnectionPool(host='hooks.example.com', port=8443): Max retries exceeded with url: "
        f"{PATH}?{QUERY} (Caused by NewConnectionError('connection refused'))"
    )
    redacted = subject.redact(message)
    assert leaks(redacted) == []
    assert "host='hooks.example.com', port=8443" in redacted
    assert leaks(subject.redact(f"path {PATH} only")) == []


def test_redact_hides_a_token_echoed_alone_and_the_re_quoted_path() -> None:
    subject = target(url="https://hooks.example.com/hook/" + "a{b}c-0123456789abcdef" + "?k=v v")
    assert "0123456789abcdef" not in subject.redact('{"error": "bad token a{b}c-0123456789abcdef"}')
    assert "0123456789abcdef" not in subject.redact("url: /hook/a%7Bb%7Dc-0123456789abcdef?k=v%20v")
    assert leaks(subject.redact(f"sig {QUERY_SIG}"), [QUERY_SIG]) == [QUERY_SIG]  # not this target's
    assert leaks(target().redact(f"echo: {QUERY_SIG}")) == []


def test_secrets_list_the_path_and_query() -> None:
    secrets = target().secrets()
    assert URL in secrets
    assert f"{PATH.lstrip('/')}?{QUERY}" in secrets
    assert PATH.lstrip("/") in secrets and QUERY in secrets
    assert PATH_TOKEN in secrets and QUERY_SIG in secrets


def test_short_path_pieces_are_not_scrubbed_from_ordinary_words() -> None:
    # "/alerts" holds no credential; scrubbing "alerts" would mangle every log line.
    subject = target(url="https://hooks.example.com/alerts")
    assert subject.public_url == "https://hooks.example.com/***"
    assert subject.redact("3 alerts accepted") == "3 alerts accepted"
    assert subject.redact("POST https://hooks.example.com/alerts") == "POST https://hooks.example.com/***"


# --- opting out -----------------------------------------------------------------------------


def test_url_is_public_shows_the_url_whole() -> None:
    subject = target(url_is_public=True)
    assert subject.public_url == URL
    assert subject.to_public_dict()["url"] == URL
    assert subject.redact(f"POST {URL}") == f"POST {URL}"
    assert all(s not in URL for s in subject.secrets())


def test_url_is_public_still_hides_a_password() -> None:
    subject = target(url="https://bob:pa55-in-url@hooks.example.com/alerts", url_is_public=True)
    assert subject.public_url == "https://***@hooks.example.com/alerts"
    assert "pa55-in-url" in subject.secrets()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"url_is_public": "yes"}, "url_is_public must be true or false"),
        ({"url_is_public": 1}, "url_is_public must be true or false"),
    ],
)
def test_url_is_public_must_be_a_boolean(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        target(**extra)


def test_a_slack_url_cannot_be_declared_public() -> None:
    with pytest.raises(ConfigError, match="url_is_public"):
        target("slack", url_is_public=True)
    assert target("slack", url_is_public=False).public_url == PUBLIC


# --- every output: the API, a DLQ row, a log line -------------------------------------------


CONFIGS = [
    {"name": "hook", "type": "webhook", "url": URL},
    {
        "name": "public",
        "type": "webhook",
        "url": "https://status.example.com/hooks/public-feed",
        "url_is_public": True,
    },
]


@pytest.fixture
def client() -> Iterator[Any]:
    mem = in_memory_api(CONFIGS)
    yield create_app(settings_with_tokens(), mem.services).test_client()


def test_the_api_target_list_shows_the_host_only(client: Any) -> None:
    response = client.get("/api/v2/publishing/targets", headers=bearer("reader"))
    assert response.status_code == 200
    assert leaks(response.get_data(as_text=True)) == []
    urls = {t["name"]: t["url"] for t in response.get_json()["targets"]}
    assert urls == {"hook": PUBLIC, "public": "https://status.example.com/hooks/public-feed"}


def test_the_api_target_view_shows_the_host_only(client: Any) -> None:
    response = client.get("/api/v2/publishing/targets/hook", headers=bearer("reader"))
    assert response.status_code == 200
    assert leaks(response.get_data(as_text=True)) == []
    assert response.get_json()["url"] == PUBLIC


class EchoingPublisher:
    """Fails the way a careless adapter or provider would: the full URL in the message."""

    def publish(self, target, enriched, job_id):  # type: ignore[no-untyped-def]
        raise PermanentPublishError(f"HTTP 404 from {target.url}: no route {PATH}?{QUERY}", status_code=404)


def test_a_dlq_row_shows_neither_in_target_config_nor_in_the_error() -> None:
    clock = FrozenClock()
    service = DeliveryService(
        TargetRegistry([parse_target(CONFIGS[0])]),
        EchoingPublisher(),
        InMemoryBreakerStore(clock),
        retry_policy=lambda _: RetryPolicy(),
        breaker_config=BreakerConfig(),
        default_timeout_s=5,
        clock=clock,
        rng=lambda: 0.0,
    )
    raw = {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}
    (alert,) = parse_alertmanager({"alerts": [raw]})
    job = Job("j-1", "hook", Priority.HIGH, alert, 0.0)
    outcome = service.attempt(job)
    assert isinstance(outcome, Failed)
    letter_job = plan(job, outcome, clock(), Timings()).letter
    assert letter_job is not None
    letter = service.letter_for(letter_job)
    assert letter.target_config["url"] == PUBLIC
    assert leaks(json.dumps(letter.target_config)) == []
    assert leaks(letter.error_message) == []
    assert "hooks.example.com" in letter.error_message


def test_a_log_line_shows_neither_the_path_nor_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHING_LOG_FORMAT", raising=False)
    monkeypatch.setenv("PUBLISHING_LOG_LEVEL", "DEBUG")
    registry = TargetRegistry([parse_target(CONFIGS[0])])
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(registry.secrets, stream=out)
        log = logging.getLogger("publishing.adapters.http")
        log.info("delivery to target %s failed: POST %s refused", "hook", URL)
        log.info("urllib3 says: url: %s?%s; token %s", PATH, QUERY, PATH_TOKEN)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = out.getvalue()
    assert len(text.splitlines()) == 2
    assert leaks(text) == []
    assert "delivery to target hook failed" in text
