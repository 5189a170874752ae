"""The formats of msteams, opsgenie, email and discord, their providers' limits, and the email
publisher's SMTP conversation and error classification (over a fake SMTP client)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from publishing.adapters.http import _body_retry_after
from publishing.adapters.publishers import RoutingPublisher
from publishing.adapters.smtp import SmtpPublisher, build_message, classify_smtp_error
from publishing.alert import Alert, AlertStatus, Classification, EnrichedAlert, Severity
from publishing.classification import ErrorType, classify_smtp_reply
from publishing.delivery import Receipt
from publishing.errors import PermanentPublishError, TransientPublishError
from publishing.formatters import discord, format_payload, opsgenie, request_url
from publishing.target_config import DEFAULT_RATE_LIMITS, parse_target
from publishing.targets import Target, TargetType

JOB_ID = "job-1"
ALERT = EnrichedAlert(
    Alert(
        fingerprint="fp/1 2",
        alert_name="DiskFull",
        status=AlertStatus.FIRING,
        labels={"alertname": "DiskFull", "severity": "warning", "instance": "db-1"},
        annotations={"summary": "disk 95% full", "description": "db-1's /var is nearly full."},
        starts_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        generator_url="https://prometheus.example.com/graph",
    )
)
RESOLVED = replace(
    ALERT,
    alert=replace(ALERT.alert, status=AlertStatus.RESOLVED, ends_at=datetime(2026, 5, 1, 13, 0, tzinfo=UTC)),
)
SMTP = {"host": "smtp.example.com", "from": "alerts@example.com", "to": ["a@example.com", "b@example.com"]}
RAW: dict[str, dict[str, Any]] = {
    "msteams": {"url": "https://prod.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=S3CRETSIGNATURE"},
    "opsgenie": {"url": "https://api.opsgenie.com/v2/alerts", "api_key": "genie-api-key-0001"},
    "email": {"smtp": {**SMTP, "username": "mailer", "password": "smtp-pass-0001"}},
    "discord": {"url": "https://discord.com/api/webhooks/1234/T0KEN-discord-webhook"},
}  # fmt: skip


def target(kind: str, **extra: Any) -> Target:
    return parse_target({"name": f"{kind}-t", "type": kind, **RAW[kind], **extra})


def with_severity(severity: str, enriched: EnrichedAlert = ALERT) -> EnrichedAlert:
    labels = {**enriched.alert.labels, "severity": severity}
    return replace(enriched, alert=replace(enriched.alert, labels=labels))


# --- msteams --------------------------------------------------------------------------------


def test_teams_gets_a_message_with_one_adaptive_card_1_4() -> None:
    body = format_payload(target("msteams"), ALERT, JOB_ID)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text, facts = card["body"]
    assert title["text"] == "[FIRING] DiskFull"
    assert "disk 95% full" in text["text"]
    assert {"title": "instance", "value": "db-1"} in facts["facts"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Source", "url": "https://prometheus.example.com/graph"}
    ]


@pytest.mark.parametrize(
    ("severity", "status", "colour"),
    [("critical", "firing", "Attention"), ("warning", "firing", "Warning"), ("info", "firing", "Accent"),
     ("made-up", "firing", "Warning"), ("critical", "resolved", "Good")],
)  # fmt: skip
def test_the_teams_title_is_coloured_by_severity(severity: str, status: str, colour: str) -> None:
    enriched = with_severity(severity, RESOLVED if status == "resolved" else ALERT)
    card = format_payload(target("msteams"), enriched, JOB_ID)["attachments"][0]["content"]
    assert card["body"][0]["color"] == colour


# --- opsgenie -------------------------------------------------------------------------------


def test_opsgenie_creates_an_alert_keyed_by_the_fingerprint() -> None:
    body = format_payload(target("opsgenie"), ALERT, JOB_ID)
    assert body["alias"] == "fp/1 2"
    assert body["message"] == "DiskFull: disk 95% full"
    assert body["priority"] == "P3"
    assert "instance:db-1" in body["tags"]
    assert body["details"]["instance"] == "db-1"
    assert body["entity"] == "db-1"
    assert request_url(target("opsgenie"), ALERT) == "https://api.opsgenie.com/v2/alerts"


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("critical", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P5"), ("noise", "P5"), ("", "P3")],
)
def test_opsgenie_priority_is_mapped_from_severity(severity: str, priority: str) -> None:
    assert format_payload(target("opsgenie"), with_severity(severity), JOB_ID)["priority"] == priority


def test_opsgenie_message_is_cut_to_130_characters_and_tags_to_opsgenies_limits() -> None:
    labels = {f"label{i:02}": "v" * 80 for i in range(30)}
    long = replace(ALERT, alert=replace(ALERT.alert, labels=labels, annotations={"summary": "x" * 500}))
    body = format_payload(target("opsgenie"), long, JOB_ID)
    assert len(body["message"]) == opsgenie.MESSAGE_MAX_CHARS
    assert len(body["tags"]) == opsgenie.MAX_TAGS
    assert all(len(tag) <= opsgenie.TAG_MAX_CHARS for tag in body["tags"])


def test_opsgenie_closes_a_resolved_alert_by_alias() -> None:
    body = format_payload(target("opsgenie"), RESOLVED, JOB_ID)
    assert body == {"source": "alert-publishing", "note": "Resolved at 2026-05-01T13:00:00Z."}
    assert request_url(target("opsgenie"), RESOLVED) == (
        "https://api.opsgenie.com/v2/alerts/fp%2F1%202/close?identifierType=alias"
    )


def test_the_opsgenie_key_is_a_secret() -> None:
    genie = target("opsgenie")
    assert genie.to_public_dict()["api_key"] == "***"
    assert "genie-api-key-0001" in genie.secrets()
    assert genie.redact("key genie-api-key-0001") == "key ***"


# --- discord --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "status", "colour"),
    [("critical", "firing", 0xE01E5A), ("warning", "firing", 0xECB22E), ("info", "firing", 0x36C5F0),
     ("critical", "resolved", 0x2EB67D)],
)  # fmt: skip
def test_discord_gets_an_embed_coloured_by_severity(severity: str, status: str, colour: int) -> None:
    enriched = with_severity(severity, RESOLVED if status == "resolved" else ALERT)
    body = format_payload(target("discord"), enriched, JOB_ID)
    (embed,) = body["embeds"]
    assert embed["color"] == colour
    assert embed["title"].endswith("DiskFull")
    assert body["allowed_mentions"] == {"parse": []}


def test_discord_limits_hold_for_a_huge_alert() -> None:
    labels = {f"l{i:02}": "v" * 2000 for i in range(40)}
    huge = replace(ALERT, alert=replace(ALERT.alert, labels=labels, annotations={"summary": "s" * 9000}))
    (embed,) = format_payload(target("discord"), huge, JOB_ID)["embeds"]
    assert len(embed["description"]) <= discord.DESCRIPTION_MAX_CHARS
    assert len(embed["fields"]) == discord.MAX_FIELDS
    assert all(len(f["value"]) <= discord.FIELD_VALUE_MAX_CHARS for f in embed["fields"])


# --- email ----------------------------------------------------------------------------------


def test_the_email_has_a_subject_a_text_and_an_html_part() -> None:
    hostile = replace(ALERT, alert=replace(ALERT.alert, annotations={"summary": "<script>x</script>"}))
    body = format_payload(target("email"), hostile, JOB_ID)
    assert body["subject"] == "[FIRING] DiskFull"
    assert "<script>x</script>" in body["text"]
    assert "&lt;script&gt;" in body["html"] and "<script>" not in body["html"]
    message = build_message(target("email").smtp, body, JOB_ID, 0.0)  # type: ignore[arg-type]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"] == "a@example.com, b@example.com"
    assert message["Message-ID"] == f"<{JOB_ID}@alert-publishing>"


def test_a_multi_line_title_template_stays_one_subject_line() -> None:
    mail = target("email", template={"title": "{{ alert_name }}\nX-Injected: yes"})
    assert format_payload(mail, ALERT, JOB_ID)["subject"] == "DiskFull X-Injected: yes"


def test_the_email_target_shows_its_relay_never_its_password() -> None:
    mail = target("email")
    shown = mail.to_public_dict()
    assert shown["url"] == "smtp://smtp.example.com:587"
    assert shown["smtp"]["password"] == "***"
    assert "smtp-pass-0001" not in repr(mail) + str(shown)


# --- provider defaults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "per_s"),
    [(TargetType.MSTEAMS, 4.0), (TargetType.DISCORD, 0.5), (TargetType.OPSGENIE, 1.0)],
)
def test_each_provider_gets_its_documented_rate_limit(kind: TargetType, per_s: float) -> None:
    assert DEFAULT_RATE_LIMITS[kind].describe()["per_s"] == pytest.approx(per_s)
    assert target(kind.value).rate_limit == DEFAULT_RATE_LIMITS[kind]
    assert target(kind.value, rate_limit=False).rate_limit is None


def test_email_has_no_default_rate_limit() -> None:
    assert target("email").rate_limit is None


# --- the email publisher over a fake SMTP client -------------------------------------------


class FakeSmtp:
    """Records the conversation; fails where told to."""

    calls: list[tuple[str, Any]]
    fail_at: str | None = None
    error: BaseException | None = None

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.calls.append(("connect", (host, port, timeout)))

    def __enter__(self) -> FakeSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append(("quit", None))

    def _step(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if self.fail_at == name and self.error is not None:
            raise self.error

    def ehlo(self) -> None:
        self._step("ehlo")

    def starttls(self, context: ssl.SSLContext) -> None:
        self._step("starttls", context)

    def login(self, user: str, password: str) -> None:
        self._step("login", user)

    def send_message(self, message: Any) -> dict[str, Any]:
        self._step("send_message", message["Subject"])
        return {}


def fake_smtp(fail_at: str | None = None, error: BaseException | None = None) -> Any:
    """A stand-in for ``smtplib.SMTP`` (the class: the publisher makes one a send)."""
    return type("Smtp", (FakeSmtp,), {"calls": [], "fail_at": fail_at, "error": error})


def test_the_publisher_upgrades_with_starttls_before_it_logs_in() -> None:
    smtp = fake_smtp()
    context = ssl.create_default_context()
    publisher = SmtpPublisher(default_timeout_s=7, smtp_factory=smtp, context_factory=lambda _: context)
    receipt = publisher.publish(target("email"), ALERT, JOB_ID)
    assert receipt.status_code == 250
    assert [name for name, _ in smtp.calls] == [
        "connect", "ehlo", "starttls", "ehlo", "login", "send_message", "quit",
    ]  # fmt: skip
    assert smtp.calls[0][1] == ("smtp.example.com", 587, 7)
    assert smtp.calls[2][1] is context


def test_without_starttls_or_login_the_publisher_only_sends() -> None:
    smtp = fake_smtp()
    plain = target("email", smtp={**SMTP, "starttls": False})
    SmtpPublisher(default_timeout_s=5, smtp_factory=smtp).publish(plain, ALERT, JOB_ID)
    assert [name for name, _ in smtp.calls] == ["connect", "ehlo", "send_message", "quit"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [(421, ErrorType.TRANSIENT), (450, ErrorType.TRANSIENT), (452, ErrorType.TRANSIENT),
     (500, ErrorType.PERMANENT), (535, ErrorType.PERMANENT), (550, ErrorType.PERMANENT),
     (554, ErrorType.PERMANENT), (250, ErrorType.UNKNOWN)],
)  # fmt: skip
def test_an_smtp_reply_is_classified_by_its_class(code: int, expected: ErrorType) -> None:
    assert classify_smtp_reply(code) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (smtplib.SMTPDataError(451, b"try later"), ErrorType.TRANSIENT),
        (smtplib.SMTPSenderRefused(550, b"no", "alerts@example.com"), ErrorType.PERMANENT),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), ErrorType.PERMANENT),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (451, b"busy")}), ErrorType.TRANSIENT),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (550, b"no")}), ErrorType.PERMANENT),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), ErrorType.PERMANENT),
        (smtplib.SMTPServerDisconnected("gone"), ErrorType.TRANSIENT),
        (ConnectionRefusedError(111, "refused"), ErrorType.TRANSIENT),
        (TimeoutError("timed out"), ErrorType.TRANSIENT),
        (ssl.SSLCertVerificationError("self-signed"), ErrorType.PERMANENT),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_smtp_failures_are_classified(error: BaseException, expected: ErrorType) -> None:
    assert classify_smtp_error(error) is expected


def test_a_4xx_is_a_transient_error_and_a_5xx_permanent_both_redacted() -> None:
    publisher = SmtpPublisher(
        default_timeout_s=5,
        smtp_factory=fake_smtp("send_message", smtplib.SMTPDataError(451, b"greylisted smtp-pass-0001")),
    )
    with pytest.raises(TransientPublishError) as transient:
        publisher.publish(target("email"), ALERT, JOB_ID)
    assert "451" in str(transient.value) and "smtp-pass-0001" not in str(transient.value)
    publisher = SmtpPublisher(
        default_timeout_s=5,
        smtp_factory=fake_smtp("login", smtplib.SMTPAuthenticationError(535, b"bad credentials")),
    )
    with pytest.raises(PermanentPublishError, match="535"):
        publisher.publish(target("email"), ALERT, JOB_ID)


def test_a_relay_without_starttls_is_a_permanent_error() -> None:
    error = smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
    publisher = SmtpPublisher(default_timeout_s=5, smtp_factory=fake_smtp("starttls", error))
    with pytest.raises(PermanentPublishError, match="STARTTLS"):
        publisher.publish(target("email"), ALERT, JOB_ID)


def test_templates_reach_every_new_format() -> None:
    template = {"title": "{{ labels.instance }} is {{ status }}", "text": "see {{ annotations.summary }}"}
    teams = format_payload(target("msteams", template=template), ALERT, JOB_ID)
    assert teams["attachments"][0]["content"]["body"][0]["text"] == "db-1 is firing"
    genie = format_payload(target("opsgenie", template=template), ALERT, JOB_ID)
    assert (genie["message"], genie["description"]) == ("db-1 is firing", "see disk 95% full")
    mail = format_payload(target("email", template=template), ALERT, JOB_ID)
    assert mail["subject"] == "db-1 is firing" and "see disk 95% full" in mail["text"]
    disc = format_payload(target("discord", template=template), ALERT, JOB_ID)
    assert disc["embeds"][0]["description"] == "see disk 95% full"


def test_a_classification_reaches_the_default_text() -> None:
    classified = replace(ALERT, classification=Classification(Severity.CRITICAL, 0.9, "Disk fills fast."))
    body = format_payload(target("discord"), classified, JOB_ID)
    assert "Disk fills fast." in body["embeds"][0]["description"]
    assert body["embeds"][0]["color"] == 0xE01E5A


# --- a 429's retry_after in the body (Teams, Discord) -----------------------------------------


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        (b'{"message":"You are being rate limited.","retry_after":0.64,"global":false}', 0.64),
        (b'{"error":{"code":"TooManyRequests","retry_after":12}}', 12.0),
        (b'{"retry_after":true}', None),
        (b'{"retry_after":-1}', None),
        (b'{"retry_after":"5"}', None),
        (b"[1, 2]", None),
        (b"not json", None),
        (b"\x1f\x8b\x08gzip", None),
    ],
)
def test_retry_after_is_read_from_a_json_body(body: bytes, seconds: float | None) -> None:
    assert _body_retry_after(body) == seconds


# --- one publisher port over HTTP and SMTP ------------------------------------------------------


class Recording:
    def __init__(self) -> None:
        self.targets: list[str] = []

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        self.targets.append(target.name)
        return Receipt(200, 0.0)


def test_the_routing_publisher_sends_email_over_smtp_and_the_rest_over_http() -> None:
    http, smtp = Recording(), Recording()
    publisher = RoutingPublisher(http, {TargetType.EMAIL: smtp})
    for kind in ("email", "discord", "opsgenie", "msteams"):
        publisher.publish(target(kind), ALERT, JOB_ID)
    assert smtp.targets == ["email-t"]
    assert http.targets == ["discord-t", "opsgenie-t", "msteams-t"]
