"""The request caps the API enforces itself, in one place (``api.request_guard`` refuses what
exceeds them), and gunicorn's limits set above them (``GUNICORN_LIMITS``, used by
``deploy/gunicorn.conf.py`` and ``python -m api``) so that such a request reaches the app and
gets its JSON 414 or 431 instead of gunicorn's HTML page. Nothing is imported here: gunicorn's
master reads this before any worker loads the app."""

from __future__ import annotations

from typing import Any

MAX_URL_BYTES = 8192
# One header field, name and value; and how many fields a request may carry.
MAX_HEADER_BYTES = 8192
MAX_HEADER_FIELDS = 100

GUNICORN_LIMITS: dict[str, Any] = {
    # gunicorn caps a request line at 8190 bytes unless the limit is 0 (none); our own 414 for
    # a URL over MAX_URL_BYTES takes its place, and gunicorn's worker timeout still bounds how
    # long a client may take to send one.
    "limit_request_line": 0,
    # Room above our caps, still bounded: gunicorn buffers up to fields x field size of headers.
    "limit_request_fields": 2 * MAX_HEADER_FIELDS,
    "limit_request_field_size": 8 * MAX_HEADER_BYTES,
}


# What gunicorn itself still refuses before the app sees the request (a header over its field
# size, more fields than it buffers, a NUL or other bad byte in a header, a broken request
# line) gets the API's JSON error shape instead of gunicorn's HTML page.
_GUNICORN_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    501: "not_implemented",
}


def json_error_bytes(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response in the API's JSON shape (``{"error", "message",
    "details"}``); the connection closes after it."""
    import json

    code = _GUNICORN_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    # The message names what was wrong, never a header's value (it may be a credential).
    body = json.dumps({"error": code, "message": message[:200], "details": {}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def answer_gunicorn_errors_in_json() -> None:
    """Make gunicorn write its own request errors as JSON (called by the gunicorn configs, in
    the master before any worker forks)."""
    from gunicorn import util

    def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
        messages = {
            414: "the request line is too long",
            431: "the request's header fields are too large or too many",
        }
        util.write_nonblock(
            sock, json_error_bytes(status_int, reason, messages.get(status_int, reason.lower()))
        )

    util.write_error = write_error
