"""The destinations of round two end to end, each through a real worker: Microsoft Teams,
Opsgenie and Discord against loopback HTTP receivers checking the provider's documented
payload and rate-limit answer; email against a real SMTP server (aiosmtpd) with STARTTLS and
AUTH; a target's own retry knobs; ``resolve_only_if_fired``."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from publishing.classification import ErrorType
from publishing.tracking import JobState
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

TEAMS_PATH = "/workflows/0a1b2c/triggers/manual/paths/invoke?api-version=2016-06-01&sig=TEAMS-SIG-0123456789"
DISCORD_PATH = "/api/webhooks/1234567890/DISCORD-TOKEN-0123456789"
GENIE_KEY = "genie-key-0123456789"
SMTP_USER, SMTP_PASSWORD = "mailer", "smtp-password-0123"


@pytest.fixture
def make_pipeline(fresh_redis: str, dlq_database_url: str, tmp_path: Path) -> Iterator[Any]:
    pipelines: list[Pipeline] = []

    def make(targets: list[dict[str, Any]], **env: str) -> Pipeline:
        pipeline = Pipeline(tmp_path, fresh_redis, dlq_database_url, targets, **env)
        pipelines.append(pipeline)
        pipeline.worker(concurrency=2)
        return pipeline

    yield make
    for pipeline in pipelines:
        pipeline.close()


@pytest.fixture
def receiver() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


# --- Microsoft Teams --------------------------------------------------------------------------


def test_teams_gets_an_adaptive_card_and_its_429_retry_after_pauses_the_target(
    make_pipeline: Any, receiver: HttpTarget
) -> None:
    throttled = '{"error":{"code":"TooManyRequests","message":"Rate limit is exceeded."},"retry_after":1}'
    receiver.script([Reply(429, body=throttled), Reply(202, body="")])
    pipeline = make_pipeline([{"name": "teams", "type": "msteams", "url": receiver.url + TEAMS_PATH}])
    (job,) = pipeline.submit(alerts(am_alert("DiskFull", instance="db-1")), ["teams"]).jobs

    snapshot = pipeline.wait_state(job.id, JobState.SUCCEEDED)
    first, second = receiver.wait_for(2)
    # The 429's retry_after (1 s, in the body only) paused the target and spent no retry.
    assert second.at - first.at >= 0.9
    assert snapshot.retry_count == 0
    assert second.path == TEAMS_PATH
    body = second.json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0] == {
        "type": "TextBlock", "text": "[FIRING] DiskFull", "size": "Large", "weight": "Bolder",
        "color": "Attention", "wrap": True,
    }  # fmt: skip
    assert {"title": "instance", "value": "db-1"} in card["body"][2]["facts"]
    assert second.headers["Idempotency-Key"] == job.id
    # The workflow URL's signature is its credential: never shown.
    assert "TEAMS-SIG" not in str(pipeline.registry.get("teams").to_public_dict())


# --- Discord ----------------------------------------------------------------------------------


def test_discord_gets_a_coloured_embed_rendered_from_the_template_and_honours_retry_after(
    make_pipeline: Any, receiver: HttpTarget
) -> None:
    limited = '{"message":"You are being rate limited.","retry_after":0.8,"global":false}'
    receiver.script([Reply(429, body=limited, headers={"Retry-After": "30"}), Reply(204, body="")])
    pipeline = make_pipeline(
        [
            {
                "name": "discord",
                "type": "discord",
                "url": receiver.url + DISCORD_PATH,
                "template": {
                    "title": "{{ alert_name }} on {{ labels.instance }}",
                    "text": "{{ annotations.summary }}",
                },
            }
        ]
    )
    (job,) = pipeline.submit(
        alerts(am_alert("CpuHot", severity="warning", instance="web-2")), ["discord"]
    ).jobs

    pipeline.wait_state(job.id, JobState.SUCCEEDED)
    first, second = receiver.wait_for(2)
    # The body's float retry_after (0.8 s) wins over the rounded header (30 s here).
    assert 0.7 <= second.at - first.at < 10
    body = second.json()
    (embed,) = body["embeds"]
    assert embed["title"] == "CpuHot on web-2"
    assert embed["description"] == "CpuHot is happening"
    assert embed["color"] == 0xECB22E
    assert {"name": "instance", "value": "web-2", "inline": True} in embed["fields"]
    assert body["allowed_mentions"] == {"parse": []}


# --- Opsgenie ---------------------------------------------------------------------------------


def test_opsgenie_creates_with_the_genie_key_and_closes_by_alias_on_resolve(
    make_pipeline: Any, receiver: HttpTarget
) -> None:
    receiver.script([Reply(202, body='{"result":"Request will be processed","requestId":"r1"}')])
    pipeline = make_pipeline(
        [{"name": "genie", "type": "opsgenie", "url": receiver.url + "/v2/alerts", "api_key": GENIE_KEY}]
    )
    (fire,) = pipeline.submit(
        alerts(am_alert("QueueStuck", severity="critical", service="billing")), ["genie"]
    ).jobs
    pipeline.wait_state(fire.id, JobState.SUCCEEDED)
    (resolve,) = pipeline.submit(
        alerts(am_alert("QueueStuck", severity="critical", status="resolved", service="billing")), ["genie"]
    ).jobs
    pipeline.wait_state(resolve.id, JobState.SUCCEEDED)

    create, close = receiver.wait_for(2)
    assert (create.method, create.path) == ("POST", "/v2/alerts")
    assert create.headers["Authorization"] == f"GenieKey {GENIE_KEY}"
    body = create.json()
    assert body["alias"] == fire.fingerprint
    assert body["message"] == "QueueStuck: QueueStuck is happening"
    assert len(body["message"]) <= 130
    assert body["priority"] == "P1"
    assert "service:billing" in body["tags"]
    assert body["details"]["service"] == "billing"
    assert (close.method, close.path) == ("POST", f"/v2/alerts/{fire.fingerprint}/close?identifierType=alias")
    assert close.headers["Authorization"] == f"GenieKey {GENIE_KEY}"
    assert close.json()["source"] == "alert-publishing"


def test_an_opsgenie_rejection_dead_letters_with_the_key_redacted(
    make_pipeline: Any, receiver: HttpTarget
) -> None:
    receiver.script([Reply(422, body=f'{{"message":"Invalid key {GENIE_KEY}"}}')])
    pipeline = make_pipeline(
        [{"name": "genie", "type": "opsgenie", "url": receiver.url + "/v2/alerts", "api_key": GENIE_KEY}]
    )
    (job,) = pipeline.submit(alerts(am_alert("Bad")), ["genie"]).jobs
    pipeline.wait_state(job.id, JobState.DLQ)
    (row,) = pipeline.dlq_rows()
    assert row.error_type is ErrorType.PERMANENT
    assert "422" in row.error_message
    assert GENIE_KEY not in row.error_message + str(row.target_config)
    assert row.target_config["api_key"] == "***"


# --- email over a real SMTP server --------------------------------------------------------------


@dataclass
class MailHandler:
    """Keeps each message with how its session went; answers from a script (the last repeats)."""

    replies: list[str] = field(default_factory=lambda: ["250 OK"])
    messages: list[tuple[Envelope, EmailMessage, bool, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append((envelope, parsed, session.ssl is not None, bool(session.authenticated)))
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def authenticate(
    server: SmtpServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    # ``handled=False``: the server answers a failure itself (535).
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(tmp_path: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 and its key, made with openssl (None without it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@dataclass
class MailServer:
    handler: MailHandler
    port: int
    ca_file: Path | None


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    handler = MailHandler()
    port = free_port()
    pair = self_signed(tmp_path)
    options: dict[str, Any] = {"authenticator": authenticate, "auth_required": True}
    if pair is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*pair)
        options |= {"tls_context": context, "require_starttls": True}
    else:
        # No way to make a certificate here: AUTH over plain text, STARTTLS left to the unit test.
        options |= {"auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield MailServer(handler, port, pair[0] if pair else None)
    finally:
        controller.stop()


def email_target(server: MailServer, **extra: Any) -> dict[str, Any]:
    smtp: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "starttls": server.ca_file is not None,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from": "alerts@example.com",
        "to": ["oncall@example.com", "sre@example.com"],
    }
    if server.ca_file is not None:
        smtp["ca_file"] = str(server.ca_file)
    return {"name": "mail", "type": "email", "smtp": smtp, **extra}


def test_an_email_goes_over_starttls_and_auth_with_a_text_and_an_html_part(
    make_pipeline: Any, mail_server: MailServer
) -> None:
    pipeline = make_pipeline([email_target(mail_server)])
    (job,) = pipeline.submit(alerts(am_alert("DiskFull", instance="db-1")), ["mail"]).jobs
    pipeline.wait_state(job.id, JobState.SUCCEEDED)

    ((envelope, message, tls, authenticated),) = mail_server.handler.messages
    assert tls is (mail_server.ca_file is not None)
    assert authenticated
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "sre@example.com"]
    assert message["Subject"] == "[FIRING] DiskFull"
    assert message["Message-ID"] == f"<{job.id}@alert-publishing>"
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert "DiskFull is happening" in plain.get_content()
    assert html.get_content_type() == "text/html"
    assert "<h2>[FIRING] DiskFull</h2>" in html.get_content()


def test_an_smtp_4xx_is_retried_and_a_5xx_dead_letters(make_pipeline: Any, mail_server: MailServer) -> None:
    mail_server.handler.replies = ["451 4.3.0 Try again later", "250 OK"]
    pipeline = make_pipeline([email_target(mail_server)])
    (job,) = pipeline.submit(alerts(am_alert("Greylisted")), ["mail"]).jobs
    snapshot = pipeline.wait_state(job.id, JobState.SUCCEEDED)
    assert snapshot.retry_count == 1
    assert len(mail_server.handler.messages) == 2

    mail_server.handler.replies = [f"554 5.7.1 Rejected for {SMTP_PASSWORD}"]
    (refused,) = pipeline.submit(alerts(am_alert("Rejected")), ["mail"]).jobs
    pipeline.wait_state(refused.id, JobState.DLQ)
    (row,) = pipeline.dlq_rows()
    assert row.error_type is ErrorType.PERMANENT
    assert "554" in row.error_message
    assert SMTP_PASSWORD not in row.error_message + str(row.target_config)
    assert row.target_config["smtp"]["password"] == "***"


def test_a_wrong_smtp_password_is_permanent(make_pipeline: Any, mail_server: MailServer) -> None:
    target = email_target(mail_server)
    target["smtp"]["password"] = "wrong-password-0"
    pipeline = make_pipeline([target])
    (job,) = pipeline.submit(alerts(am_alert("NoLogin")), ["mail"]).jobs
    pipeline.wait_state(job.id, JobState.DLQ)
    (row,) = pipeline.dlq_rows()
    assert (row.error_type, row.retry_count) == (ErrorType.PERMANENT, 0)
    assert "535" in row.error_message
    assert mail_server.handler.messages == []


# --- a target's own retry knobs -----------------------------------------------------------------


def test_a_targets_max_retries_overrides_the_fleets(make_pipeline: Any, receiver: HttpTarget) -> None:
    receiver.script([Reply(503)])
    pipeline = make_pipeline(
        [
            {
                "name": "hook",
                "type": "webhook",
                "url": receiver.url + "/a",
                "max_retries": 1,
                "retry_base_s": 0.1,
            }
        ],
        PUBLISHING_MAX_RETRIES="6",
        PUBLISHING_BREAKER_FAILURE_THRESHOLD="50",
    )
    (job,) = pipeline.submit(alerts(am_alert("Down")), ["hook"]).jobs
    pipeline.wait_state(job.id, JobState.DLQ)
    (row,) = pipeline.dlq_rows()
    assert row.retry_count == 1
    assert len(receiver.received) == 2


# --- resolve_only_if_fired ------------------------------------------------------------------------


def test_a_resolve_is_sent_only_after_its_firing_was_delivered(
    make_pipeline: Any, receiver: HttpTarget
) -> None:
    pipeline = make_pipeline(
        [{"name": "hook", "type": "webhook", "url": receiver.url + "/a", "resolve_only_if_fired": True}]
    )
    # Never fired here (it fired before the target existed, or was filtered): not sent.
    (orphan,) = pipeline.submit(alerts(am_alert("Orphan", status="resolved")), ["hook"]).jobs
    pipeline.wait_state(orphan.id, JobState.SUPERSEDED)

    (fire,) = pipeline.submit(alerts(am_alert("Real")), ["hook"]).jobs
    pipeline.wait_state(fire.id, JobState.SUCCEEDED)
    (resolve,) = pipeline.submit(alerts(am_alert("Real", status="resolved")), ["hook"]).jobs
    pipeline.wait_state(resolve.id, JobState.SUCCEEDED)

    sent = [(r.json()["alert_name"], r.json()["status"]) for r in receiver.received]
    assert sent == [("Real", "firing"), ("Real", "resolved")]
