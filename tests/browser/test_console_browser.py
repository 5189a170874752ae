"""An operator in a browser: signs in, filters the dead letters, replays a row and watches
the replayed job succeed, against Redis, PostgreSQL, a worker and loopback targets."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import ADMIN_TOKEN, READER_TOKEN, ConsoleServer
from tests.browser.screens import shoot
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget
from tests.support.pipeline import Pipeline, alertmanager_payload, am_alert

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def wait(driver: Any, timeout_s: float = 20.0) -> WebDriverWait[Any]:
    # Pages that reload themselves swap their elements under the test's feet.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout_s, poll_frequency=0.1, ignored_exceptions=ignored)


def sign_in(driver: Any, server: ConsoleServer, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(server.url + "/ui/")
    wait(driver).until(seen.presence_of_element_located((By.ID, "token")))
    shoot(driver, "sign-in")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(seen.presence_of_element_located((By.ID, "role")))


def dead_letters(pipeline: Pipeline, count: int) -> None:
    wait_until(lambda: len(pipeline.dlq_rows()) >= count, 30)


def test_sign_in_filter_replay_and_see_it_delivered(
    browser: Any, stack: tuple[Pipeline, ConsoleServer], targets: dict[str, HttpTarget]
) -> None:
    pipeline, server = stack
    pipeline.worker()
    payload = alertmanager_payload(
        am_alert("DiskFull", instance="db-1"),
        am_alert("CpuHot", "warning", instance="db-2"),
        am_alert("QueueStuck", "info", instance="mq-1"),
    )
    assert server.api("POST", "/webhook", json=payload).status_code == 202
    # alpha refuses its first job for good and takes the other two; beta refuses all three.
    dead_letters(pipeline, 4)
    (alpha_row,) = pipeline.dlq_rows(target="alpha-hook")

    sign_in(browser, server, ADMIN_TOKEN)
    assert browser.find_element(By.ID, "role").text == "admin"
    wait(browser).until(lambda d: "answered a ping" in d.find_element(By.ID, "workers").text)
    shoot(browser, "overview")

    browser.get(server.url + "/ui/dlq")
    form = browser.find_element(By.ID, "dlq-filters")
    form.find_element(By.NAME, "target").send_keys("alpha-hook")
    Select(form.find_element(By.NAME, "replayed")).select_by_value("false")
    browser.find_element(By.ID, "apply-filters").click()
    wait(browser).until(lambda d: "target=alpha-hook" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#dlq-rows tbody tr[data-id]")
    assert [r.get_attribute("data-id") for r in rows] == [alpha_row.id]
    assert "HTTP 410" in rows[0].text
    browser.get(server.url + "/ui/dlq")
    shoot(browser, "dlq")

    browser.get(f"{server.url}/ui/dlq/{alpha_row.id}")
    shoot(browser, "dlq-row")
    browser.find_element(By.ID, "replay").click()
    wait(browser).until(lambda d: "replayed as job" in d.find_element(By.CSS_SELECTOR, ".flash").text)
    browser.find_element(By.ID, "replay-job").click()
    # The job page reloads itself until the job has ended.
    wait(browser, 30).until(lambda d: d.find_element(By.ID, "job-state").text == "succeeded")
    shoot(browser, "job")
    assert len(targets["alpha"].wait_for(4)) == 4  # three alerts, then the replay

    browser.get(server.url + "/ui/jobs?q=DiskFull")
    wait(browser).until(seen.presence_of_element_located((By.ID, "job-rows")))
    shoot(browser, "jobs")
    browser.get(server.url + "/ui/targets")
    shoot(browser, "targets")
    browser.get(server.url + "/ui/targets/beta-hook")
    shoot(browser, "target")
    browser.get(server.url + "/ui/dlq?target=beta-hook")
    browser.find_element(By.ID, "bulk-dry-run").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "run-total").text == "3")
    shoot(browser, "bulk-replay-dry-run")

    browser.find_element(By.ID, "bulk-run").click()
    wait(browser, 30).until(lambda d: "done" in d.find_element(By.ID, "run-state").text)
    assert "3 replayed" in browser.find_element(By.ID, "run-state").text
    shoot(browser, "bulk-replay-run")


def test_a_reader_sees_but_cannot_replay(browser: Any, stack: tuple[Pipeline, ConsoleServer]) -> None:
    pipeline, server = stack
    pipeline.worker()
    assert server.api("POST", "/webhook", json=alertmanager_payload(am_alert("DiskFull"))).status_code == 202
    dead_letters(pipeline, 2)
    sign_in(browser, server, READER_TOKEN)
    browser.get(server.url + "/ui/dlq")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#dlq-rows tbody tr[data-id]")) == 2
    assert not browser.find_elements(By.ID, "replay-selected")
    assert not browser.find_elements(By.CSS_SELECTOR, ".replay-one")
    browser.find_element(By.ID, "sign-out").click()
    wait(browser).until(seen.presence_of_element_located((By.ID, "token")))
