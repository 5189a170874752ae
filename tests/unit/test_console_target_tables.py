"""The two console tables of targets (the overview's and the targets page) show a target
alike: its name linking to its page, a disabled one marked, and a row saying none is set up."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from api import create_app
from api.testing import TOKENS, in_memory_api, settings_with_tokens

TARGETS = [
    {"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
    {"name": "quiet-hook", "type": "webhook", "url": "http://127.0.0.1:9/quiet", "enabled": False},
]
TABLE_PAGES = ["/ui/", "/ui/targets"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def page(app: Flask, path: str) -> str:
    client = app.test_client()
    csrf = CSRF.search(client.get("/ui/login").get_data(as_text=True))
    assert csrf
    client.post("/ui/login", data={"csrf_token": csrf.group(1), "token": TOKENS["reader"]})
    answer = client.get(path)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


@pytest.mark.parametrize("path", TABLE_PAGES)
def test_each_target_links_to_its_page_and_a_disabled_one_says_so(path: str) -> None:
    html = page(create_app(settings_with_tokens(), in_memory_api(TARGETS).services), path)
    assert '<td><a href="/ui/targets/ops-webhook">ops-webhook</a></td>' in html
    assert (
        '<td><a href="/ui/targets/quiet-hook">quiet-hook</a> <span class="badge">disabled</span></td>' in html
    )
    assert "No targets configured" not in html


@pytest.mark.parametrize(("path", "columns"), [("/ui/", 6), ("/ui/targets", 10)])
def test_with_no_targets_the_table_says_where_they_are_configured(path: str, columns: int) -> None:
    html = page(create_app(settings_with_tokens(), in_memory_api().services), path)
    assert (
        f'<tr><td colspan="{columns}" class="muted">No targets configured (PUBLISHING_TARGETS).</td></tr>'
        in html
    )
