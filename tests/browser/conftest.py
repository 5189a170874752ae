"""The console in a real browser: Debian's headless ``chromium`` driven by ``chromedriver``
through selenium, against the app served on a free loopback port over real Redis and
PostgreSQL, with a real worker delivering to loopback targets. Without chromium or
chromedriver these tests skip, and fail when ``CI`` is set."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import BaseWSGIServer, make_server

from api import create_app
from publishing.settings import Settings
from tests.integration.conftest import migrate
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline
from tests.support.services import flush_private_db, missing

ADMIN_TOKEN = "admin-console-token-0001"
READER_TOKEN = "reader-console-token-0001"


class ConsoleServer:
    """The Flask app (API and console) under werkzeug on a free loopback port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing("chromium and chromedriver", FileNotFoundError("apt-get install -y chromium chromium-driver"))
    assert chromium is not None and driver is not None
    return chromium, driver


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium, driver_path = _binaries()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        missing("selenium", exc)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,1000", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    migrate(postgres_url)
    return postgres_url


@pytest.fixture
def targets() -> Iterator[dict[str, HttpTarget]]:
    # alpha refuses its first request for good (410) and takes every later one; beta refuses all.
    servers = {
        "alpha": HttpTarget([Reply(410, "gone"), Reply(200)]),
        "beta": HttpTarget([Reply(410, "gone")]),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def stack(
    redis_url: str, migrated_postgres_url: str, tmp_path: Path, targets: dict[str, HttpTarget]
) -> Iterator[tuple[Pipeline, ConsoleServer]]:
    flush_private_db(redis_url)
    engine = sa.create_engine(migrated_postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM publishing_dlq"))
    engine.dispose()
    config = [
        {"name": f"{name}-hook", "type": "webhook", "url": f"{server.url}/{name}"}
        for name, server in targets.items()
    ]
    pipeline = Pipeline(
        tmp_path,
        redis_url,
        migrated_postgres_url,
        config,
        PUBLISHING_API_TOKENS=f"admin:{ADMIN_TOKEN},reader:{READER_TOKEN}",
    )
    server = ConsoleServer(pipeline.settings)
    try:
        yield pipeline, server
    finally:
        server.stop()
        pipeline.close()
