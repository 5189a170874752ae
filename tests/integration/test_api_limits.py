"""The API under gunicorn with the fleet's config (``deploy/gunicorn.conf.py``): an over-long URL
or header, or a NUL byte in a DLQ filter, gets the API's own JSON error, not gunicorn's HTML page
and not a database error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.fleet import ROOT, wait_until
from tests.support.private_services import free_port

pytestmark = pytest.mark.redis

TOKEN = "admin-limits-token-0000001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DLQ = "/api/v2/publishing/dlq"


@pytest.fixture
def api_url(redis_url: str, tmp_path: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/publishing.db",
        "PUBLISHING_API_TOKENS": f"admin:{TOKEN}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WEB_CONCURRENCY": "1",
    }
    env.pop("PUBLISHING_INSECURE_NO_AUTH", None)
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
             "api.wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                return requests.get(f"{url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(serving, 30, 0.1)
            yield url
        finally:
            process.terminate()
            process.wait(20)


def json_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


def test_a_10_kb_url_is_a_json_414(api_url: str) -> None:
    response = requests.get(f"{api_url}{DLQ}?target={'t' * 10_000}", headers=AUTH, timeout=10)
    json_error(response, 414, "uri_too_long")


def test_a_16_kb_header_is_a_json_431(api_url: str) -> None:
    response = requests.get(f"{api_url}{DLQ}", headers={**AUTH, "X-Padding": "p" * 16_000}, timeout=10)
    json_error(response, 431, "request_header_fields_too_large")


def test_a_nul_byte_in_a_dlq_filter_is_a_json_400(api_url: str) -> None:
    response = requests.get(f"{api_url}{DLQ}?target=%00x", headers=AUTH, timeout=10)
    assert json_error(response, 400, "invalid_parameter")["details"]["parameter"] == "target"
    listing = requests.get(f"{api_url}{DLQ}?target=x", headers=AUTH, timeout=10)
    assert (listing.status_code, listing.json()["total"]) == (200, 0)


def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (requests refuses some of these) and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        # Over gunicorn's own field size: it refuses before the app sees it.
        (b"X-Padding: " + b"p" * 100_000 + b"\r\n", 431, "request_header_fields_too_large"),
        # More fields than gunicorn buffers.
        (b"".join(b"X-F%d: v\r\n" % i for i in range(300)), 431, "request_header_fields_too_large"),
        # A NUL byte inside a header value.
        (b"X-Team: ops\x00evil\r\n", 400, "bad_request"),
    ],
    ids=["header-over-64-kib", "300-header-fields", "nul-in-a-header"],
)
def test_what_gunicorn_refuses_itself_is_json_too(api_url: str, extra: bytes, status: int, code: str) -> None:
    request = (
        b"GET " + DLQ.encode() + b" HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + TOKEN.encode()
        + b"\r\n" + extra + b"Connection: close\r\n\r\n"
    )  # fmt: skip
    got, headers, body = _raw(api_url, request)
    assert got == status, body[:300]
    assert headers["Content-Type"].startswith("application/json"), body[:300]
    answer = json.loads(body)
    assert set(answer) == {"error", "message", "details"} and answer["error"] == code
    assert b"evil" not in body and b"ppppp" not in body
