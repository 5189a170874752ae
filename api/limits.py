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
