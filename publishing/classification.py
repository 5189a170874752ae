"""Classification of failed attempts (docs/design.md (Errors, Retries)): a lookup table, typed information first.

Order of evidence: our own typed errors, then the HTTP status a target answered with, then
exception types (the standard library's here; an adapter adds its client library's, as
``publishing.adapters.http`` does for ``requests``), and only as a last resort a
status code read from the message text, matched as a whole number after a word such as
"HTTP" or "status" so that "port 5030" is never read as 503.
"""

from __future__ import annotations

import re
import socket
import ssl
from enum import StrEnum

from publishing import errors


class ErrorType(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
PERMANENT_STATUS = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 422, 501, 505})

# A row names one exception type, or several that are classified alike.
ExceptionTable = tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorType], ...]

# Checked in order: the first matching type wins, so subclasses come before their bases.
EXCEPTION_TABLE: ExceptionTable = (
    (errors.PermanentPublishError, ErrorType.PERMANENT),
    (errors.TransientPublishError, ErrorType.TRANSIENT),
    (errors.UnknownPublishError, ErrorType.UNKNOWN),
    (ssl.SSLCertVerificationError, ErrorType.PERMANENT),
    # The network failed on the way, not the target's answer: the next attempt may pass.
    ((socket.gaierror, ConnectionRefusedError, ConnectionResetError, TimeoutError), ErrorType.TRANSIENT),
)

# The error a publisher raises for each classification, so every publisher's failures read alike.
ERROR_CLASSES: dict[ErrorType, type[errors.PublishError]] = {
    ErrorType.TRANSIENT: errors.TransientPublishError,
    ErrorType.PERMANENT: errors.PermanentPublishError,
    ErrorType.UNKNOWN: errors.UnknownPublishError,
}

_STATUS_IN_TEXT = re.compile(r"\b(?:HTTP(?:/\d(?:\.\d)?)?|status(?:[ _]code)?)\s*[:=]?\s*(\d{3})(?!\d)", re.I)


def classify_status(status_code: int) -> ErrorType:
    if status_code in TRANSIENT_STATUS:
        return ErrorType.TRANSIENT
    if status_code in PERMANENT_STATUS:
        return ErrorType.PERMANENT
    return ErrorType.UNKNOWN


def classify_smtp_reply(code: int) -> ErrorType:
    """An SMTP reply that refused the mail: 4xx asks to try again later, 5xx is final."""
    if 400 <= code < 500:
        return ErrorType.TRANSIENT
    if 500 <= code < 600:
        return ErrorType.PERMANENT
    return ErrorType.UNKNOWN


def status_from_text(text: str) -> int | None:
    """A status code named in a message ("HTTP 503", "status code: 429"), else None."""
    match = _STATUS_IN_TEXT.search(text)
    return int(match.group(1)) if match else None


def classify(exc: BaseException, table: ExceptionTable = ()) -> ErrorType:
    """``table`` is checked before the standard library's types (a client library's own)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return classify_status(status)
    response_status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(response_status, int):
        return classify_status(response_status)
    for exc_type, error_type in (*EXCEPTION_TABLE[:3], *table, *EXCEPTION_TABLE[3:]):
        if isinstance(exc, exc_type):
            return error_type
    text_status = status_from_text(str(exc))
    if text_status is not None:
        return classify_status(text_status)
    return ErrorType.UNKNOWN
