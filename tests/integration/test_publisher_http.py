"""HttpPublisher against a real HTTP server on loopback standing in for PagerDuty, Slack,
Rootly and webhooks: what goes on the wire, and how every kind of failure is classified."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest
import requests

from publishing.adapters.http import READ_CHUNK_BYTES, RESPONSE_EXCERPT_BYTES, HttpPublisher, http_session
from publishing.alert import EnrichedAlert, parse_enriched
from publishing.delivery import Receipt
from publishing.errors import (
    PermanentPublishError,
    PublishError,
    RateLimitedError,
    TransientPublishError,
    UnknownPublishError,
)
from publishing.formatters import format_payload
from publishing.target_config import parse_target
from publishing.targets import Target
from publishing.testing import FrozenClock
from tests.support.http_target import HttpTarget, Received, Reply

JOB_ID = "6c0d2a57-91f4-4c1e-8a3b-0f7e9d4b2c11"
NOW = 1_700_000_000.0
ROUTING_KEY = "R0UT1NGKEYpagerduty0123456789ab"
ROOTLY_TOKEN = "rootly-api-t0ken-5f3e"
BEARER_TOKEN = "webhook-bearer-t0ken-9a1c"
BASIC_PASSWORD = "basic-passw0rd-77e2"
WHSEC = "whsec_" + base64.b64encode(b"a 24-byte signing key!!!").decode()
PLAIN_SECRET = "plain-signing-secret-3d9f"
SLACK_PATH = "/services/T0SECRET/B0SECRET/SLACKXOXSECRET"

# Each kind of target the publisher meets, as an operator would configure it.
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "pagerduty": ("/v2/enqueue", {"type": "pagerduty", "routing_key": ROUTING_KEY}),
    "slack": (SLACK_PATH, {"type": "slack"}),
    "rootly": ("/v1/alerts", {"type": "rootly", "api_token": ROOTLY_TOKEN}),
    "webhook-bearer": (
        "/alerts",
        {"type": "webhook", "bearer_token": BEARER_TOKEN, "signing_secret": WHSEC},
    ),
    "webhook-basic": (
        "/alerts",
        {
            "type": "webhook",
            "basic_auth": {"username": "ops", "password": BASIC_PASSWORD},
            "signing_secret": PLAIN_SECRET,
        },
    ),
    "alertmanager": ("/api/alerts", {"type": "webhook", "format": "alertmanager"}),
}


def make_target(kind: str, base_url: str, **extra: Any) -> Target:
    path, config = KINDS[kind]
    return parse_target({"name": f"{kind}-t", "url": base_url + path, **config, **extra})


def make_alert(status: str = "firing") -> EnrichedAlert:
    alert: dict[str, Any] = {
        "fingerprint": "f00dfeed12345678",
        "alert_name": "DiskFull",
        "status": status,
        "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1"},
        "annotations": {"summary": "Disk / is 97% full", "runbook_url": "https://runbooks/disk"},
        "starts_at": "2024-05-01T10:00:00Z",
    }
    if status == "resolved":
        alert["ends_at"] = "2024-05-01T11:00:00Z"
    return parse_enriched({"alert": alert})[0]


def make_publisher(session: requests.Session | None = None, **kwargs: Any) -> HttpPublisher:
    kwargs.setdefault("default_timeout_s", 5.0)
    kwargs.setdefault("clock", FrozenClock(NOW))
    return HttpPublisher(session or requests.Session(), **kwargs)


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def only_request(server: HttpTarget) -> Received:
    [received] = server.wait_for(1)
    return received


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secrets_of(target: Target) -> list[str]:
    # A Slack URL is quoted piecemeal by requests' errors: its path alone is as secret.
    return [*target.secrets(), SLACK_PATH, "SLACKXOXSECRET"]


def our_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    # urllib3 logs each request line at DEBUG, Slack's secret path included: the process's
    # logging configuration keeps it above DEBUG; here we hold our own logger to the rule.
    return [r.getMessage() for r in caplog.records if r.name.startswith("publishing")]


class RecordingSession(requests.Session):
    """A real session that remembers the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append(kwargs)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[HttpTarget]:
    # One server for the module: stopping one takes half a second (its poll interval).
    with HttpTarget() as target:
        yield target


@pytest.fixture
def server(shared_server: HttpTarget) -> HttpTarget:
    shared_server.script([Reply()])
    shared_server.received.clear()
    return shared_server


# --- success and what goes on the wire ------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
@pytest.mark.parametrize("kind", list(KINDS))
def test_any_2xx_is_delivered(server: HttpTarget, kind: str, status: int) -> None:
    server.script([Reply(status=status, body="" if status == 204 else '{"ok":true}')])
    delivered = make_publisher(clock=time.time).publish(make_target(kind, server.url), make_alert(), JOB_ID)
    assert isinstance(delivered, Receipt)
    assert delivered.status_code == status
    assert 0 <= delivered.duration_s < 5


@pytest.mark.parametrize("status", ["firing", "resolved"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_request_is_a_compact_json_post_with_the_job_id(
    server: HttpTarget, kind: str, status: str
) -> None:
    target = make_target(kind, server.url)
    alert = make_alert(status)
    make_publisher().publish(target, alert, JOB_ID)
    received = only_request(server)
    headers = lower(received.headers)
    assert received.method == "POST"
    assert received.path == KINDS[kind][0]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("alert-publishing/")
    assert headers["idempotency-key"] == JOB_ID
    expected = json.dumps(format_payload(target, alert, JOB_ID), separators=(",", ":"), ensure_ascii=False)
    assert received.body == expected.encode()


def test_pagerduty_gets_the_routing_key_in_the_body_and_no_authorization(server: HttpTarget) -> None:
    make_publisher().publish(make_target("pagerduty", server.url), make_alert(), JOB_ID)
    received = only_request(server)
    assert received.json()["routing_key"] == ROUTING_KEY
    assert "authorization" not in lower(received.headers)


@pytest.mark.parametrize(
    ("kind", "authorization"),
    [
        ("rootly", f"Bearer {ROOTLY_TOKEN}"),
        ("webhook-bearer", f"Bearer {BEARER_TOKEN}"),
        ("webhook-basic", "Basic " + base64.b64encode(f"ops:{BASIC_PASSWORD}".encode()).decode()),
        ("slack", None),
        ("alertmanager", None),
    ],
)
def test_authorization_by_target_type(server: HttpTarget, kind: str, authorization: str | None) -> None:
    make_publisher().publish(make_target(kind, server.url), make_alert(), JOB_ID)
    assert lower(only_request(server).headers).get("authorization") == authorization


def expected_signature(secret: str, received: Received) -> str:
    """Standard Webhooks, computed here independently of the publisher."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    headers = lower(received.headers)
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(("kind", "secret"), [("webhook-bearer", WHSEC), ("webhook-basic", PLAIN_SECRET)])
def test_webhooks_carry_standard_webhooks_headers_and_a_verifiable_signature(
    server: HttpTarget, kind: str, secret: str
) -> None:
    make_publisher().publish(make_target(kind, server.url), make_alert(), JOB_ID)
    received = only_request(server)
    headers = lower(received.headers)
    assert headers["webhook-id"] == JOB_ID
    assert headers["webhook-timestamp"] == str(int(NOW))
    assert headers["webhook-signature"] == expected_signature(secret, received)


def test_a_whsec_secret_without_padding_is_decoded_leniently(server: HttpTarget) -> None:
    make_publisher().publish(
        make_target("webhook-bearer", server.url, signing_secret="whsec_abc"), make_alert(), JOB_ID
    )
    received = only_request(server)
    key = base64.b64decode("abc=")
    signed = f"{JOB_ID}.{int(NOW)}.".encode() + received.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert lower(received.headers)["webhook-signature"] == expected


def test_a_whsec_secret_that_is_not_base64_is_a_permanent_error(server: HttpTarget) -> None:
    target = make_target("webhook-bearer", server.url, signing_secret="whsec_not*base64!")
    with pytest.raises(PermanentPublishError, match="signing_secret") as caught:
        make_publisher().publish(target, make_alert(), JOB_ID)
    assert "not*base64" not in str(caught.value)
    assert server.received == []


def test_an_unsigned_webhook_still_has_id_and_timestamp(server: HttpTarget) -> None:
    make_publisher().publish(make_target("alertmanager", server.url), make_alert(), JOB_ID)
    headers = lower(only_request(server).headers)
    assert headers["webhook-id"] == JOB_ID
    assert headers["webhook-timestamp"] == str(int(NOW))
    assert "webhook-signature" not in headers


@pytest.mark.parametrize("kind", ["pagerduty", "slack", "rootly"])
def test_other_targets_get_no_standard_webhooks_headers(server: HttpTarget, kind: str) -> None:
    make_publisher().publish(make_target(kind, server.url), make_alert(), JOB_ID)
    assert not any(h.startswith("webhook-") for h in lower(only_request(server).headers))


def test_the_targets_own_headers_are_sent_but_cannot_replace_the_idempotency_key(server: HttpTarget) -> None:
    target = make_target(
        "webhook-bearer", server.url, headers={"X-Team": "payments", "Idempotency-Key": "forged"}
    )
    make_publisher().publish(target, make_alert(), JOB_ID)
    headers = lower(only_request(server).headers)
    assert headers["x-team"] == "payments"
    assert headers["idempotency-key"] == JOB_ID


@pytest.mark.parametrize(
    ("target_timeout_s", "expected"),
    [(None, (5.0, 10.0)), (0.3, (0.3, 0.3)), (30.0, (5.0, 30.0))],
)
def test_connect_and_read_timeouts_are_always_set(
    server: HttpTarget, target_timeout_s: float | None, expected: tuple[float, float]
) -> None:
    session = RecordingSession()
    extra = {"timeout_s": target_timeout_s} if target_timeout_s else {}
    make_publisher(session, default_timeout_s=10.0).publish(
        make_target("webhook-bearer", server.url, **extra), make_alert(), JOB_ID
    )
    assert session.calls[0]["timeout"] == expected


# --- failures -------------------------------------------------------------------------------


def publish_failing(server: HttpTarget, reply: Reply, kind: str = "webhook-bearer") -> PublishError:
    server.script([reply])
    with pytest.raises(PublishError) as caught:
        make_publisher().publish(make_target(kind, server.url), make_alert(), JOB_ID)
    return caught.value


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, PermanentPublishError),
        (401, PermanentPublishError),
        (403, PermanentPublishError),
        (404, PermanentPublishError),
        (410, PermanentPublishError),
        (422, PermanentPublishError),
        (501, PermanentPublishError),
        (408, TransientPublishError),
        (500, TransientPublishError),
        (502, TransientPublishError),
        (503, TransientPublishError),
        (504, TransientPublishError),
        (418, UnknownPublishError),
        (599, UnknownPublishError),
    ],
)
def test_non_2xx_is_classified_by_status(
    server: HttpTarget, status: int, error_class: type[PublishError]
) -> None:
    error = publish_failing(server, Reply(status=status, body='{"error":"nope"}'))
    assert type(error) is error_class
    assert error.status_code == status
    assert f"HTTP {status}" in str(error)
    assert '{"error":"nope"}' in str(error)


def test_a_redirect_is_not_followed(server: HttpTarget) -> None:
    error = publish_failing(server, Reply(status=302, headers={"Location": "/elsewhere"}))
    assert type(error) is UnknownPublishError
    assert error.status_code == 302
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_s"),
    [
        (429, "7", 7.0),
        (429, formatdate(NOW + 120, usegmt=True), 120.0),
        (429, None, None),
        (429, "soon", None),
        (503, "30", 30.0),
        (503, formatdate(NOW + 45, usegmt=True), 45.0),
    ],
)
def test_rate_limits_carry_retry_after(
    server: HttpTarget, status: int, retry_after: str | None, expected_s: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    error = publish_failing(server, Reply(status=status, headers=headers))
    assert isinstance(error, RateLimitedError)
    assert isinstance(error, TransientPublishError)
    assert error.status_code == status
    assert error.retry_after_s == expected_s


def test_a_503_without_retry_after_is_transient_not_rate_limited(server: HttpTarget) -> None:
    error = publish_failing(server, Reply(status=503))
    assert type(error) is TransientPublishError


def test_a_target_that_hangs_past_the_timeout_is_transient(server: HttpTarget) -> None:
    server.script([Reply(delay_s=3.0)])
    target = make_target("webhook-bearer", server.url, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(TransientPublishError) as caught:
        make_publisher().publish(target, make_alert(), JOB_ID)
    assert time.monotonic() - started < 2.0
    assert caught.value.status_code is None
    assert "Timeout" in str(caught.value)


def test_connection_refused_is_transient() -> None:
    target = make_target("webhook-bearer", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(TransientPublishError) as caught:
        make_publisher().publish(target, make_alert(), JOB_ID)
    assert "ConnectionError" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/alerts",
        "http://[::1/alerts",
        "http://exa mple.com/alerts",
        "ftp://example.com/alerts",
        "http://a..b/alerts",
        "http:///alerts",
    ],
)
def test_an_invalid_url_is_permanent(url: str) -> None:
    target = dataclasses.replace(make_target("webhook-bearer", "http://127.0.0.1"), url=url)
    with pytest.raises(PermanentPublishError):
        make_publisher().publish(target, make_alert(), JOB_ID)


def test_a_long_error_body_is_cut_short(server: HttpTarget) -> None:
    error = publish_failing(server, Reply(status=500, body="x" * 100_000))
    assert str(error).count("x") <= 200
    assert len(str(error)) < 300


# --- what a target answers is read bounded, within the attempt's deadline -------------------

MiB = 1024 * 1024


class CountingSession(requests.Session):
    """A real session that counts the body bytes the publisher pulls from each response."""

    def __init__(self) -> None:
        super().__init__()
        self.body_bytes_read = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        raw = response.raw
        for name in ("read", "read1"):
            original = getattr(raw, name)

            def counted(*a: Any, _original: Any = original, **k: Any) -> bytes:
                data: bytes = _original(*a, **k)
                self.body_bytes_read += len(data or b"")
                return data

            setattr(raw, name, counted)
        return response


def endless(piece: bytes, limit_bytes: int) -> Any:
    """Pieces without end (up to a safety limit, so a publisher that reads everything finishes)."""

    def pieces() -> Iterator[bytes]:
        for _ in range(limit_bytes // len(piece)):
            yield piece

    return pieces


def gzip_bomb(decompressed_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    block = b"B" * MiB
    compressed = [compressor.compress(block) for _ in range(decompressed_bytes // MiB)]
    return b"".join(compressed) + compressor.flush()


def test_a_200_with_an_endless_body_is_delivered_after_reading_at_most_the_cap() -> None:
    reply = Reply(200, pieces=endless(b"x" * 65_536, 256 * MiB))
    session = CountingSession()
    with HttpTarget([reply]) as server:
        receipt = make_publisher(session).publish(
            make_target("webhook-bearer", server.url), make_alert(), JOB_ID
        )
        streamed = server.wait_for_stream()
    assert receipt.status_code == 200
    assert session.body_bytes_read <= RESPONSE_EXCERPT_BYTES + READ_CHUNK_BYTES
    # The client hung up long before the end: the server could not push the rest.
    assert streamed.client_closed
    assert streamed.sent_bytes < 16 * MiB


def test_a_gzip_bomb_in_an_error_body_is_never_decompressed() -> None:
    bomb = gzip_bomb(1024 * MiB)
    chunks = [bomb[i : i + 65_536] for i in range(0, len(bomb), 65_536)]
    reply = Reply(
        500,
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        pieces=lambda: iter(chunks),
    )
    session = CountingSession()
    with HttpTarget([reply]) as server:
        with pytest.raises(TransientPublishError) as caught:
            make_publisher(session).publish(make_target("webhook-bearer", server.url), make_alert(), JOB_ID)
        server.wait_for_stream()
    message = str(caught.value)
    assert caught.value.status_code == 500
    assert message.startswith("HTTP 500 from target 'webhook-bearer-t'")
    assert "BBBB" not in message
    assert len(message) < 300
    assert session.body_bytes_read <= RESPONSE_EXCERPT_BYTES + READ_CHUNK_BYTES


def test_a_body_trickling_past_the_timeout_ends_the_attempt_as_a_timeout() -> None:
    # One byte every 0.2 s of a 100-byte body: every read succeeds well within the socket's
    # read timeout, yet the attempt must end at its 1 s deadline.
    reply = Reply(
        200, headers={"Content-Length": "100"}, pieces=lambda: iter([b"."] * 100), piece_interval_s=0.2
    )
    with HttpTarget([reply]) as server:
        target = make_target("webhook-bearer", server.url, timeout_s=1.0)
        with pytest.raises(TransientPublishError) as caught:
            make_publisher().publish(target, make_alert(), JOB_ID)
        streamed = server.wait_for_stream()
    assert "timed out" in str(caught.value)
    assert caught.value.status_code is None
    assert streamed.client_closed
    assert streamed.sent_bytes < 100


# --- secrets --------------------------------------------------------------------------------


def echo_of(target: Target) -> str:
    """An error body that quotes every secret back, as some services do."""
    return json.dumps({"error": "rejected", "request": target.url, "echo": target.secrets()})


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
def test_no_error_message_or_log_line_holds_a_secret(
    server: HttpTarget, kind: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    target = make_target(kind, server.url)
    server.script([Reply(status=status, body=echo_of(target))])
    with pytest.raises(PublishError) as caught:
        make_publisher().publish(target, make_alert(), JOB_ID)
    message = str(caught.value)
    assert ("***" in message) == bool(target.secrets())
    for secret in secrets_of(target):
        assert secret not in message
        assert all(secret not in line for line in our_log_lines(caplog))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_network_error_message_holds_no_secret(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    target = make_target(kind, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(TransientPublishError) as caught:
        make_publisher().publish(target, make_alert(), JOB_ID)
    for secret in secrets_of(target):
        assert secret not in str(caught.value)
        assert all(secret not in line for line in our_log_lines(caplog))


def test_a_slack_url_never_appears_even_when_it_is_invalid() -> None:
    slack = make_target("slack", "http://127.0.0.1")
    target = dataclasses.replace(slack, url="http://127.0.0.1:99999" + SLACK_PATH)
    with pytest.raises(PermanentPublishError) as caught:
        make_publisher().publish(target, make_alert(), JOB_ID)
    assert "SLACKXOXSECRET" not in str(caught.value)
    assert "T0SECRET" not in str(caught.value)


class HeadTrickler:
    """A target that answers its status line, then its headers one byte every ``interval_s``:
    every wait for bytes is short, the answer head never ends."""

    def __init__(self, interval_s: float = 0.2, head_bytes: int = 40) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.sent_bytes = 0
        self.client_closed = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(interval_s, head_bytes), daemon=True)
        self._thread.start()

    def _serve(self, interval_s: float, head_bytes: int) -> None:
        conn, _ = self._listener.accept()
        with conn:
            conn.recv(65_536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(head_bytes):
                    time.sleep(interval_s)
                    conn.sendall(b"X")
                    self.sent_bytes += 1
            except OSError:
                self.client_closed.set()
        self.done.set()

    def close(self) -> None:
        self._listener.close()


def test_an_answer_head_trickling_past_the_timeout_ends_the_attempt_as_a_timeout() -> None:
    # The status line at once, then a header byte every 0.2 s for 8 s: no single wait comes near
    # the socket's read timeout, yet the attempt must end at its 1 s deadline.
    server = HeadTrickler(interval_s=0.2, head_bytes=40)
    try:
        target = make_target("webhook-bearer", server.url, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(TransientPublishError) as caught:
            # The session the product builds (``http_session``) carries the head's watchdog.
            make_publisher(http_session()).publish(target, make_alert(), JOB_ID)
        assert time.monotonic() - started >= 1.0
        assert "timed out" in str(caught.value)
        assert server.done.wait(15)
        # The client hung up: the server could not send the rest of its head.
        assert server.client_closed.is_set() and server.sent_bytes < 40
    finally:
        server.close()


# --- the environment's proxy settings --------------------------------------------------------


def test_the_shared_session_sends_through_the_environments_proxy_except_for_no_proxy_hosts(
    server: HttpTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session reads the environment once a host (requests would on every request): what
    # it sends must still be what requests does with these variables.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    publisher = make_publisher(http_session())
    behind_proxy = make_target("webhook-bearer", "http://hooks.example.invalid")
    direct = make_target("webhook-bearer", server.url)
    for _ in range(2):  # the second time from what the session remembered
        server.received.clear()
        assert publisher.publish(behind_proxy, make_alert(), JOB_ID).status_code == 200
        # A proxy gets the absolute URL in the request line.
        assert only_request(server).path == "http://hooks.example.invalid/alerts"
        server.received.clear()
        assert publisher.publish(direct, make_alert(), JOB_ID).status_code == 200
        assert only_request(server).path == "/alerts"
