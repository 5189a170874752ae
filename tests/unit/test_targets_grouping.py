"""A target's storm grouping in its configuration: whole or refused, refused for the types
whose provider keeps one incident per alert, every error naming the target and the field."""

from __future__ import annotations

from typing import Any

import pytest

from publishing.target_config import TargetConfigError, parse_target
from publishing.targets import Grouping

SLACK = {"name": "chat", "type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}


def test_grouping_is_parsed_and_shown() -> None:
    target = parse_target(
        {**SLACK, "group_by": ["cluster", "alertname"], "group_wait_s": 5, "group_max_alerts": 20}
    )
    assert target.group == Grouping(("cluster", "alertname"), 5.0, 20)
    public = target.to_public_dict()
    assert (public["group_by"], public["group_wait_s"], public["group_max_alerts"]) == (
        ["cluster", "alertname"],
        5.0,
        20,
    )
    assert parse_target(SLACK).group is None and "group_by" not in parse_target(SLACK).to_public_dict()


def test_an_empty_group_by_puts_every_alert_of_the_target_in_one_group() -> None:
    assert parse_target({**SLACK, "group_by": [], "group_wait_s": 1}).group == Grouping((), 1.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"group_by": ["cluster"]}, "target 'chat': group_by: needs group_wait_s"),
        ({"group_wait_s": 5}, "target 'chat': group_wait_s: needs group_by"),
        ({"group_max_alerts": 5}, "target 'chat': group_max_alerts: needs group_by"),
        (
            {"group_by": ["cluster"], "group_wait_s": 0},
            "target 'chat': group_wait_s must be a positive number",
        ),
        ({"group_by": "cluster", "group_wait_s": 1}, "target 'chat': group_by must be a list of label names"),
        ({"group_by": ["a-b"], "group_wait_s": 1}, "target 'chat': group_by must be a list of label names"),
        ({"group_by": ["a", "a"], "group_wait_s": 1}, "target 'chat': group_by: names a label twice"),
        (
            {"group_by": ["a"], "group_wait_s": 1, "group_max_alerts": 0},
            "target 'chat': group_max_alerts must be a whole number >= 1",
        ),
    ],
)
def test_incomplete_or_bad_grouping_is_refused_naming_the_target_and_field(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(TargetConfigError) as caught:
        parse_target({**SLACK, **extra})
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    "raw",
    [
        {
            "name": "pd",
            "type": "pagerduty",
            "url": "https://events.pagerduty.com/v2/enqueue",
            "routing_key": "k",
        },
        {"name": "og", "type": "opsgenie", "url": "https://api.opsgenie.com/v2/alerts", "api_key": "k"},
        {"name": "ro", "type": "rootly", "url": "https://api.rootly.com/v1/alerts", "api_token": "k"},
    ],
    ids=lambda raw: raw["type"],
)
def test_incident_apis_cannot_group(raw: dict[str, Any]) -> None:
    with pytest.raises(TargetConfigError) as caught:
        parse_target({**raw, "group_by": ["cluster"], "group_wait_s": 5})
    assert caught.value.problems == [
        f"target {raw['name']!r}: group_by: a {raw['type']} target cannot group alerts: its provider keeps "
        "one incident per alert, so one message for many would merge them"
    ]
