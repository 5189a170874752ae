"""Classification of failed attempts: the lookup table of docs/design.md (Errors, Retries)"""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from publishing.adapters.http import classify_request_error as classify
from publishing.classification import ErrorType, classify_status, status_from_text
from publishing.errors import (
    PermanentPublishError,
    RateLimitedError,
    TransientPublishError,
    UnknownPublishError,
)

T, P, U = ErrorType.TRANSIENT, ErrorType.PERMANENT, ErrorType.UNKNOWN


def response(status: int) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.url = "https://target.example.com/hook"
    return resp


def http_error(status: int) -> requests.HTTPError:
    return requests.HTTPError(f"{status} Server Error", response=response(status))


@pytest.mark.parametrize(
    ("status", "expected"),
    [pytest.param(s, T, id=str(s)) for s in (408, 425, 429, 500, 502, 503, 504)]
    + [pytest.param(s, P, id=str(s)) for s in (400, 401, 403, 404, 405, 409, 410, 413, 422, 501, 505)]
    + [pytest.param(s, U, id=str(s)) for s in (418, 599, 302, 451, 507, 200)],
)
def test_status_table(status: int, expected: ErrorType) -> None:
    assert classify_status(status) is expected
    assert classify(http_error(status)) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(requests.exceptions.ConnectTimeout("connect timed out"), T, id="connect-timeout"),
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), T, id="read-timeout"),
        pytest.param(requests.exceptions.Timeout("timed out"), T, id="timeout"),
        pytest.param(requests.exceptions.ConnectionError("Connection refused"), T, id="requests-connection-error"),
        pytest.param(requests.exceptions.ChunkedEncodingError("broken"), T, id="chunked-encoding"),
        pytest.param(requests.exceptions.SSLError("certificate verify failed"), P, id="requests-ssl-error"),
        pytest.param(ssl.SSLCertVerificationError("certificate verify failed"), P, id="ssl-cert-verification"),
        pytest.param(requests.exceptions.InvalidURL("bad url"), P, id="invalid-url"),
        pytest.param(requests.exceptions.MissingSchema("no scheme"), P, id="missing-schema"),
        pytest.param(requests.exceptions.InvalidSchema("ftp"), P, id="invalid-schema"),
        pytest.param(ConnectionRefusedError(111, "Connection refused"), T, id="builtin-refused"),
        pytest.param(ConnectionResetError(104, "Connection reset by peer"), T, id="builtin-reset"),
        pytest.param(socket.gaierror(-2, "Name or service not known"), T, id="dns-failure"),
        pytest.param(TimeoutError("timed out"), T, id="builtin-timeout"),
        pytest.param(http_error(503), T, id="http-error-with-503-response"),
        pytest.param(http_error(404), P, id="http-error-with-404-response"),
        pytest.param(PermanentPublishError("formatter cannot build payload"), P, id="own-permanent"),
        pytest.param(TransientPublishError("target flapping"), T, id="own-transient"),
        pytest.param(UnknownPublishError("no idea"), U, id="own-unknown"),
        pytest.param(RateLimitedError(retry_after_s=5), T, id="own-rate-limited"),
        pytest.param(PermanentPublishError("rejected", status_code=422), P, id="own-with-status-422"),
        pytest.param(TransientPublishError("bad gateway", status_code=502), T, id="own-with-status-502"),
        pytest.param(PermanentPublishError("HTTP 503 in the text"), P, id="own-type-beats-text"),
        pytest.param(RuntimeError("something odd"), U, id="plain-runtime-error"),
        pytest.param(ValueError("nothing"), U, id="plain-value-error"),
    ],
)  # fmt: skip
def test_exception_table(exc: BaseException, expected: ErrorType) -> None:
    assert classify(exc) is expected


def test_connection_error_wrapping_a_response_uses_its_status() -> None:
    exc = requests.exceptions.ConnectionError("aborted", response=response(401))
    assert classify(exc) is P


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("HTTP 503", T, id="http-503"),
        pytest.param("upstream answered HTTP/1.1 502 Bad Gateway", T, id="http-1.1-502"),
        pytest.param("status code: 404", P, id="status-code-404"),
        pytest.param("status=429 slow down", T, id="status-equals-429"),
        pytest.param("Status 500", T, id="status-capitalised"),
        pytest.param("http 418 teapot", U, id="http-418-unknown"),
        pytest.param("connect to port 5030 failed", U, id="port-5030-is-not-503"),
        pytest.param("took 5030ms", U, id="5030ms-is-not-503"),
        pytest.param("request 4041 failed", U, id="bare-number-not-read"),
        pytest.param("HTTP 5030", U, id="four-digits-after-http"),
        pytest.param("error 503", U, id="number-without-http-or-status"),
        pytest.param("HTTPSConnectionPool(host='h', port=5030): Max retries exceeded", U, id="urllib3-pool-port"),
        pytest.param("", U, id="empty"),
    ],
)  # fmt: skip
def test_text_fallback_reads_only_a_named_status_code(message: str, expected: ErrorType) -> None:
    assert classify(Exception(message)) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("HTTP 503", 503, id="http"),
        pytest.param("status code: 404", 404, id="status-code"),
        pytest.param("connect to port 5030 failed", None, id="port"),
        pytest.param("took 5030ms", None, id="duration"),
    ],
)
def test_status_from_text(text: str, expected: int | None) -> None:
    assert status_from_text(text) == expected
