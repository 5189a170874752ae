"""The ``Publisher`` contract, held by ``HttpPublisher`` against a real HTTP server on loopback and
by the recording fake the unit tests use: what a target's answer becomes, the job id every
attempt carries, and errors that never show a target's secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from publishing.adapters.http import HttpPublisher, http_session
from publishing.alert import EnrichedAlert, parse_enriched
from publishing.delivery import Publisher, Receipt
from publishing.errors import (
    PermanentPublishError,
    PublishError,
    RateLimitedError,
    TransientPublishError,
    UnknownPublishError,
)
from publishing.target_config import parse_target
from publishing.targets import Target
from publishing.testing import Answer, RecordingPublisher
from tests.support.http_target import HttpTarget, Reply

JOB_ID = "6c0d2a57-91f4-4c1e-8a3b-0f7e9d4b2c11"
ROUTING_KEY = "R0UT1NGKEYpagerduty0123456789ab"
BEARER_TOKEN = "webhook-bearer-t0ken-9a1c"
SIGNING_SECRET = "plain-signing-secret-3d9f"
SLACK_PATH = "/services/T0SECRET/B0SECRET/SLACKXOXSECRET"

# A target of each kind that holds a secret somewhere: a header, the payload, the URL itself.
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "pagerduty": ("/v2/enqueue", {"type": "pagerduty", "routing_key": ROUTING_KEY}),
    "slack": (SLACK_PATH, {"type": "slack"}),
    "webhook": (
        "/alerts",
        {"type": "webhook", "bearer_token": BEARER_TOKEN, "signing_secret": SIGNING_SECRET},
    ),
}


def make_alert() -> EnrichedAlert:
    alert = {
        "fingerprint": "f00dfeed12345678",
        "alert_name": "DiskFull",
        "status": "firing",
        "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1"},
        "annotations": {"summary": "Disk / is 97% full"},
        "starts_at": "2024-05-01T10:00:00Z",
    }
    return parse_enriched({"alert": alert})[0]


class Subject(Protocol):
    """A publisher and a target whose answers the test scripts."""

    publisher: Publisher

    def target(self, kind: str) -> Target: ...

    def answer(self, *answers: Answer) -> None: ...

    def go_down(self) -> None: ...

    def job_ids_seen(self) -> list[str]: ...


class OverHttp:
    def __init__(self) -> None:
        self.server = HttpTarget()
        self.publisher = HttpPublisher(http_session(), default_timeout_s=5.0)
        self._down = False

    def target(self, kind: str) -> Target:
        path, config = KINDS[kind]
        return parse_target({"name": f"{kind}-t", "url": self.server.url + path, **config})

    def answer(self, *answers: Answer) -> None:
        self.server.script(
            [
                Reply(
                    a.status,
                    body=a.body or '{"status":"ok"}',
                    headers={"Retry-After": f"{a.retry_after_s:.0f}"} if a.retry_after_s is not None else {},
                )
                for a in answers
            ]
        )

    def go_down(self) -> None:
        self.close()

    def job_ids_seen(self) -> list[str]:
        return [{k.lower(): v for k, v in r.headers.items()}["idempotency-key"] for r in self.server.received]

    def close(self) -> None:
        if not self._down:
            self._down = True
            self.server.stop()


class InMemory:
    def __init__(self) -> None:
        self.fake = RecordingPublisher()
        self.publisher = self.fake

    def target(self, kind: str) -> Target:
        path, config = KINDS[kind]
        return parse_target({"name": f"{kind}-t", "url": "https://target.example" + path, **config})

    def answer(self, *answers: Answer) -> None:
        self.fake.script(*answers)

    def go_down(self) -> None:
        self.fake.script(Answer(refused=True))

    def job_ids_seen(self) -> list[str]:
        return [call.job_id for call in self.fake.calls]


@pytest.fixture(params=["http", "memory"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "memory":
        yield InMemory()
        return
    over_http = OverHttp()
    try:
        yield over_http
    finally:
        over_http.close()


@pytest.mark.parametrize("status", [200, 202])
def test_an_accepted_request_returns_a_receipt_with_the_status(subject: Subject, status: int) -> None:
    subject.answer(Answer(status))

    receipt = subject.publisher.publish(subject.target("webhook"), make_alert(), JOB_ID)

    assert isinstance(receipt, Receipt)
    assert receipt.status_code == status
    assert receipt.duration_s >= 0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, PermanentPublishError),
        (401, PermanentPublishError),
        (403, PermanentPublishError),
        (404, PermanentPublishError),
        (422, PermanentPublishError),
        (500, TransientPublishError),
        (502, TransientPublishError),
        (503, TransientPublishError),
        (504, TransientPublishError),
        (418, UnknownPublishError),
    ],
)
def test_a_rejection_is_classified_by_its_status(
    subject: Subject, status: int, error: type[PublishError]
) -> None:
    subject.answer(Answer(status))

    with pytest.raises(PublishError) as raised:
        subject.publisher.publish(subject.target("webhook"), make_alert(), JOB_ID)

    assert type(raised.value) is error
    assert raised.value.status_code == status
    assert "webhook-t" in str(raised.value)


@pytest.mark.parametrize(
    ("answer", "retry_after_s"),
    [(Answer(429), None), (Answer(429, retry_after_s=7), 7.0), (Answer(503, retry_after_s=30), 30.0)],
)
def test_a_rate_limit_says_when_to_come_back(
    subject: Subject, answer: Answer, retry_after_s: float | None
) -> None:
    subject.answer(answer)

    with pytest.raises(RateLimitedError) as raised:
        subject.publisher.publish(subject.target("webhook"), make_alert(), JOB_ID)

    assert (raised.value.status_code, raised.value.retry_after_s) == (answer.status, retry_after_s)
    assert isinstance(raised.value, TransientPublishError)


def test_an_unreachable_target_is_transient(subject: Subject) -> None:
    target = subject.target("webhook")
    subject.go_down()

    with pytest.raises(PublishError) as raised:
        subject.publisher.publish(target, make_alert(), JOB_ID)

    assert type(raised.value) is TransientPublishError


def test_every_attempt_of_a_job_carries_its_id(subject: Subject) -> None:
    # The target de-duplicates on it: a retry after a lost answer must not page twice.
    subject.answer(Answer(503), Answer(429), Answer(200))
    target, alert = subject.target("webhook"), make_alert()

    for _ in range(2):
        with pytest.raises(TransientPublishError):
            subject.publisher.publish(target, alert, JOB_ID)
    subject.publisher.publish(target, alert, JOB_ID)
    subject.publisher.publish(target, alert, "another-job")

    assert subject.job_ids_seen() == [JOB_ID, JOB_ID, JOB_ID, "another-job"]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("status", [400, 429, 503, None])
def test_no_error_shows_a_secret_of_the_target(subject: Subject, kind: str, status: int | None) -> None:
    target = subject.target(kind)
    # A target that echoes what it was sent, credentials and its own URL included.
    echo = f"rejected {ROUTING_KEY} {BEARER_TOKEN} {SIGNING_SECRET} at {target.url} ({SLACK_PATH})"
    if status is None:
        subject.go_down()
    else:
        subject.answer(Answer(status, body=echo))

    with pytest.raises(PublishError) as raised:
        subject.publisher.publish(target, make_alert(), JOB_ID)

    message = str(raised.value)
    assert target.name in message
    for secret in target.secrets():
        assert secret not in message
