"""Delivery of one job by email (docs/design.md (Targets and payloads)): the formatter's subject,
plain-text and HTML parts as one message, sent over SMTP with STARTTLS and login; every
failure classified (a 4xx reply is transient, a 5xx permanent) and redacted."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from publishing.alert import EnrichedAlert
from publishing.classification import ERROR_CLASSES, ErrorType, ExceptionTable, classify, classify_smtp_reply
from publishing.delivery import Receipt
from publishing.errors import (
    PermanentPublishError,
    PublishError,
)
from publishing.formatters import format_payload
from publishing.targets import SmtpConfig, Target

log = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 600
# The reply a relay gives an accepted message.
SMTP_OK = 250
# smtplib's exceptions that carry no reply code, subclasses before their bases. A relay that
# cannot STARTTLS or log in will not learn to: permanent, as is a certificate we do not trust.
SMTP_TABLE: ExceptionTable = (
    (smtplib.SMTPNotSupportedError, ErrorType.PERMANENT),
    ((smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError), ErrorType.TRANSIENT),
    (ssl.SSLCertVerificationError, ErrorType.PERMANENT),
    ((ssl.SSLError, OSError), ErrorType.TRANSIENT),
)

SmtpFactory = Callable[..., smtplib.SMTP]


def classify_smtp_error(exc: BaseException) -> ErrorType:
    """A failed send: the reply code when the relay gave one, else the exception's type."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        # Every recipient refused for now: try again; any refused for good: it stays refused.
        if codes and all(classify_smtp_reply(c) is ErrorType.TRANSIENT for c in codes):
            return ErrorType.TRANSIENT
        return ErrorType.PERMANENT
    if isinstance(exc, smtplib.SMTPResponseException):
        return classify_smtp_reply(exc.smtp_code)
    return classify(exc, SMTP_TABLE)


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """Certificate and host name checked, against the system's CAs or the target's own."""
    return ssl.create_default_context(cafile=config.ca_file)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SmtpPublisher:
    default_timeout_s: float
    smtp_factory: SmtpFactory = smtplib.SMTP
    context_factory: Callable[[SmtpConfig], ssl.SSLContext] = tls_context
    clock: Callable[[], float] = time.time

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        config = target.smtp
        if config is None:
            raise PermanentPublishError(f"target {target.name!r} has no smtp configuration")
        message = build_message(config, format_payload(target, enriched, job_id), job_id, self.clock())
        timeout_s = target.timeout_s or self.default_timeout_s
        started = self.clock()
        try:
            with self.smtp_factory(config.host, config.port, timeout=timeout_s) as client:
                client.ehlo()
                if config.starttls:
                    client.starttls(context=self.context_factory(config))
                    client.ehlo()
                if config.username is not None and config.password is not None:
                    client.login(config.username, config.password)
                refused = client.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise _send_failed(target, exc) from exc
        if refused:
            # Accepted for some recipients: a retry would mail the others twice.
            log.warning("email for job %s: recipients refused: %s", job_id, sorted(refused))
        duration_s = max(0.0, self.clock() - started)
        log.debug("job %s mailed via target %s in %.3f s", job_id, target.name, duration_s)
        return Receipt(SMTP_OK, duration_s)


def build_message(config: SmtpConfig, payload: dict[str, Any], job_id: str, now: float) -> EmailMessage:
    """One ``multipart/alternative`` message: the plain text first, the HTML preferred."""
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(now, usegmt=True)
    # The same on every attempt of a job, so a mail client can fold a redelivered duplicate.
    message["Message-ID"] = f"<{job_id}@alert-publishing>"
    message["Idempotency-Key"] = job_id
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


def _send_failed(target: Target, exc: BaseException) -> PublishError:
    error_class = ERROR_CLASSES[classify_smtp_error(exc)]
    detail = f"{type(exc).__name__}: {exc}"
    message = target.redact(f"mail via target {target.name!r} failed: {detail}")[:MESSAGE_MAX_CHARS]
    log.info("delivery to target %s failed: %s", target.name, message)
    return error_class(message)
