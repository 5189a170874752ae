"""The targets answer's declared shape (``api.schemas_targets.Target``) covers every field a
target shows (``Target.to_public_dict``), secrets redacted, so the OpenAPI document describes
what ``GET /api/v2/publishing/targets`` returns."""

from __future__ import annotations

from typing import Any

import pytest

from api.schemas_targets import Target as TargetAnswer
from publishing.target_config import parse_target
from publishing.targets import REDACTED

FULL: list[dict[str, Any]] = [
    {
        "name": "chat",
        "type": "slack",
        "url": "https://hooks.slack.com/services/T/B/X",
        "group_by": ["cluster"],
        "group_wait_s": 5,
        "group_max_alerts": 20,
        "template": {"title": "{{ alert_name }}", "text": "t"},
        "max_retries": 2,
        "retry_base_s": 0.5,
        "retry_max_backoff_s": 10,
        "resolve_only_if_fired": True,
    },
    {
        "name": "mail",
        "type": "email",
        "smtp": {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"], "username": "u", "password": "pw-secret"},
    },
    {"name": "og", "type": "opsgenie", "url": "https://api.opsgenie.com/v2/alerts", "api_key": "genie-secret"},
    {"name": "teams", "type": "msteams", "url": "https://h.example/workflows/x"},
    {"name": "dc", "type": "discord", "url": "https://discord.com/api/webhooks/1/T", "basic_auth": {"username": "u", "password": "p-secret"}},
]  # fmt: skip
BREAKER = {"target": "x", "state": "closed", "consecutive_failures": 0, "probe_successes": 0, "opened_at": None, "trips": 0, "recoveries": 0}  # fmt: skip
HEALTH = {
    "success_rate": None, "attempts": 0, "successes": 0, "failures": 0, "deferrals": 0, "pauses": 0,
    "rate_limited": 0, "fallback_reroutes": 0, "last_success_at": None, "last_failure_at": None,
    "last_error": None, "breaker_history": [],
}  # fmt: skip


@pytest.mark.parametrize("raw", FULL, ids=lambda raw: raw["type"])
def test_every_shown_field_is_declared_and_round_trips(raw: dict[str, Any]) -> None:
    shown = parse_target(raw).to_public_dict()
    declared = {info.alias or name for name, info in TargetAnswer.model_fields.items()}
    assert set(shown) <= declared, set(shown) - declared
    answer = TargetAnswer.model_validate({**shown, "breaker": BREAKER, "health": HEALTH})
    assert answer.model_dump(by_alias=True, exclude_none=True, include=set(shown)) == {
        k: v for k, v in shown.items() if v is not None
    } | ({"rate_limit": shown["rate_limit"]} if shown.get("rate_limit") else {})
    assert not any(s in repr(answer.model_dump()) for s in ("pw-secret", "genie-secret", "p-secret"))


def test_secrets_show_redacted() -> None:
    mail = parse_target(FULL[1]).to_public_dict()
    assert mail["smtp"]["password"] == REDACTED
    assert parse_target(FULL[2]).to_public_dict()["api_key"] == REDACTED
