"""Refused before any view reads it, with the JSON error every other refusal has: a URL or a
header over its cap (``api.limits``), and a NUL byte in the path or the query."""

from __future__ import annotations

from flask import Flask, request

from api.errors import ApiError
from api.limits import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_URL_BYTES
from api.params import invalid_parameter


def _url_bytes() -> int:
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is not None:
        return len(raw)
    return len(request.path.encode()) + len(request.query_string) + 1


def check_request() -> None:
    """Refuse (414, 431, 400) what no endpoint should read."""
    if _url_bytes() > MAX_URL_BYTES:
        raise ApiError(
            414,
            "uri_too_long",
            f"the URL is longer than the {MAX_URL_BYTES} bytes allowed",
            {"max_url_bytes": MAX_URL_BYTES},
        )
    headers = list(request.headers.items())
    if len(headers) > MAX_HEADER_FIELDS:
        raise ApiError(
            431,
            "request_header_fields_too_large",
            f"the request has more than the {MAX_HEADER_FIELDS} header fields allowed",
            {"max_header_fields": MAX_HEADER_FIELDS},
        )
    for name, value in headers:
        # Name it, never echo the value: it may be a credential.
        if len(name) + len(value) + 2 > MAX_HEADER_BYTES:
            raise ApiError(
                431,
                "request_header_fields_too_large",
                f"header {name!r} is longer than the {MAX_HEADER_BYTES} bytes allowed",
                {"header": name[:256], "max_header_bytes": MAX_HEADER_BYTES},
            )
    # PostgreSQL refuses NUL in text, and no name, id or filter of ours holds one.
    for name, value in (request.view_args or {}).items():
        if "\x00" in str(value):
            raise invalid_parameter(name, value, "must not contain a NUL byte")
    if "\x00" in request.path:
        raise invalid_parameter("path", request.path, "must not contain a NUL byte")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise invalid_parameter(name, value, "must not contain a NUL byte")


def init_app(app: Flask) -> None:
    app.before_request(check_request)
