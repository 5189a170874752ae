"""The targets-file JSON Schema (publishing/target_schema.py): shipped as generated, served by
the API, agreeing with the parser, and checking every example the project ships with
``check-jsonschema`` (as CI does); ``publishing targets validate``."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from api import cli, create_app
from api.testing import bearer, in_memory_api, settings_with_tokens
from publishing.errors import ConfigError
from publishing.target_config import parse_target
from publishing.target_schema import render, targets_json_schema

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMA_FILE = DEPLOY / "targets.schema.json"
README = ROOT / "README.md"
SCHEMA_LINE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")
CHECK_JSONSCHEMA = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")


def example_files() -> list[Path]:
    """The targets files shipped in deploy/: deploy/targets/ and any ``*.targets.yaml``."""
    found = {p for p in (DEPLOY / "targets").iterdir() if p.suffix in (".yaml", ".yml", ".json")}
    found |= set(DEPLOY.rglob("*.targets.yaml"))
    return sorted(found)


def secret_examples() -> dict[str, str]:
    """The targets the Kubernetes Secret ships, one file a key."""
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "targets-secret.yaml").read_text())
    return dict(secret["stringData"])


def readme_examples() -> dict[str, Any]:
    """The README's YAML blocks about targets, each made a whole document: a fragment (a
    target with ``...`` for its connection) takes the fields of the same-named target above."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    documents: dict[str, Any] = {}
    known: dict[str, dict[str, Any]] = {}
    for i, block in enumerate(blocks):
        if "name:" not in block:
            continue
        if "\n    ...\n" in block:
            [fragment] = yaml.safe_load(block.replace("    ...\n", ""))
            documents[f"README block {i}"] = {"targets": [{**known[fragment["name"]], **fragment}]}
            continue
        document = yaml.safe_load(block)
        known |= {t["name"]: t for t in document["targets"]}
        documents[f"README block {i}"] = document
    return documents


def check_jsonschema(instance: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--schemafile", str(SCHEMA_FILE), str(instance)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- the shipped file ----------------------------------------------------------------------


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == render(), "deploy/targets.schema.json is stale: run `make schema`"


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


# --- what it accepts is what the parser accepts ----------------------------------------------

WEBHOOK = {"name": "ops-webhook", "type": "webhook", "url": "https://hooks.example.com/alerts"}
PAGERDUTY = {
    "name": "pagerduty-prod",
    "type": "pagerduty",
    "url": "https://events.pagerduty.com/v2/enqueue",
    "routing_key": "R0UT1NG",
}
SLACK = {"name": "slack-ops", "type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}

AGREEMENT = [
    pytest.param(WEBHOOK, True, id="webhook"),
    pytest.param(PAGERDUTY, True, id="pagerduty"),
    pytest.param({**WEBHOOK, "format": "alertmanager"}, True, id="webhook-alertmanager"),
    pytest.param({**SLACK, "format": None}, True, id="format-null"),
    pytest.param({**WEBHOOK, "rate_limit": False}, True, id="rate-limit-off"),
    pytest.param({**WEBHOOK, "rate_limit": {"per_min": 120, "burst": 2}}, True, id="rate-limit"),
    pytest.param({**WEBHOOK, "fallback": "other", "fallback_priorities": ["high", "low"]}, True, id="fallback"),
    pytest.param({**WEBHOOK, "timeout_s": 5, "enabled": False, "headers": {"X-Team": "sre"}}, True, id="options"),
    pytest.param({**WEBHOOK, "filter": {"severity": "critical", "status": ["firing"]}}, True, id="filter"),
    pytest.param({**WEBHOOK, "name": "Ops"}, False, id="bad-name"),
    pytest.param({**WEBHOOK, "routingkey": "x"}, False, id="unknown-key"),
    pytest.param({**WEBHOOK, "type": "opsgenie"}, False, id="unknown-type"),
    pytest.param({**SLACK, "format": "webhook"}, False, id="format-of-another-type"),
    pytest.param({k: v for k, v in PAGERDUTY.items() if k != "routing_key"}, False, id="pagerduty-without-key"),
    pytest.param({**PAGERDUTY, "routing_key": ""}, False, id="empty-secret"),
    pytest.param({"name": "r", "type": "rootly", "url": "https://api.rootly.com/v1/alerts"}, False, id="rootly-without-token"),
    pytest.param({**SLACK, "url_is_public": True}, False, id="slack-url-public"),
    pytest.param({**WEBHOOK, "url": "ftp://hooks.example.com"}, False, id="ftp-url"),
    pytest.param({**WEBHOOK, "url": "hooks.example.com/alerts"}, False, id="url-without-scheme"),
    pytest.param({**WEBHOOK, "enabled": "yes"}, False, id="enabled-string"),
    pytest.param({**WEBHOOK, "timeout_s": 0}, False, id="timeout-zero"),
    pytest.param({**WEBHOOK, "timeout_s": "5"}, False, id="timeout-string"),
    pytest.param({**WEBHOOK, "headers": {"X-Retries": 3}}, False, id="header-number"),
    pytest.param({**WEBHOOK, "rate_limit": {"per_s": 1, "per_min": 60}}, False, id="rate-limit-both"),
    pytest.param({**WEBHOOK, "rate_limit": {"burst": 2}}, False, id="rate-limit-neither"),
    pytest.param({**WEBHOOK, "filter": {"label": {"a": "b"}}}, False, id="filter-unknown-key"),
    pytest.param({**WEBHOOK, "filter": {"status": ["pending"]}}, False, id="filter-status"),
    pytest.param({**WEBHOOK, "fallback_priorities": ["urgent"]}, False, id="fallback-priority"),
    pytest.param({**WEBHOOK, "basic_auth": {"username": "a"}}, False, id="basic-auth-half"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "valid"), AGREEMENT)
def test_the_schema_and_the_parser_agree(raw: dict[str, Any], valid: bool) -> None:
    validator = jsonschema.Draft202012Validator(targets_json_schema())
    assert validator.is_valid(raw) is valid, list(validator.iter_errors(raw))
    assert validator.is_valid({"targets": [raw]}) is valid
    if valid:
        parse_target(raw)
    else:
        with pytest.raises(ConfigError):
            parse_target(raw)


# --- the examples, as CI checks them ------------------------------------------------------------


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_in_deploy_validates_with_check_jsonschema(path: Path) -> None:
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_in_deploy_names_the_schema_for_editors(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    match = SCHEMA_LINE.fullmatch(first)
    assert match, f"{path.name}: the first line should be `# yaml-language-server: $schema=...`"
    assert (path.parent / match.group(1)).resolve() == SCHEMA_FILE


@pytest.mark.parametrize(
    ("name", "content"),
    [*secret_examples().items(), *((k, yaml.safe_dump(v)) for k, v in readme_examples().items())],
)
def test_the_secret_and_readme_examples_validate_with_check_jsonschema(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(content)
    result = check_jsonschema(path)
    assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_the_readme_shows_every_targets_example() -> None:
    assert len(readme_examples()) == 3


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("name: ops\ntype: webhook\nurl: https://h.example/a\nretries: 3\n", id="unknown-key"),
        pytest.param(
            "targets:\n  - name: pd\n    type: pagerduty\n    url: https://e.example/\n", id="no-routing-key"
        ),
        pytest.param(
            "name: s\ntype: slack\nurl: https://h.example/a\nurl_is_public: true\n", id="slack-public"
        ),
        pytest.param(
            "name: ops\ntype: webhook\nurl: https://h.example/a\nenabled: 'no'\n", id="enabled-string"
        ),
    ],
)
def test_check_jsonschema_rejects_a_bad_example(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.targets.yaml"
    path.write_text(content)
    result = check_jsonschema(path)
    assert result.returncode == 1, result.stdout + result.stderr


# --- served by the API --------------------------------------------------------------------------


def test_the_api_serves_the_schema_to_a_reader() -> None:
    app = create_app(settings_with_tokens(), in_memory_api().services)
    client = app.test_client()
    answer = client.get("/api/v2/publishing/targets/schema", headers=bearer("reader"))
    assert answer.status_code == 200
    assert answer.get_json() == json.loads(SCHEMA_FILE.read_text())
    assert client.get("/api/v2/publishing/targets/schema").status_code == 401


# --- publishing targets validate ----------------------------------------------------------------


def validate(*paths: Path) -> tuple[int, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["targets", "validate", *map(str, paths)], out=out, err=err)
    return code, out.getvalue().splitlines()


def test_validate_accepts_the_shipped_examples() -> None:
    code, lines = validate(*example_files())
    assert code == 0, lines
    assert lines[-1].endswith("valid")


def test_validate_names_file_target_and_field_one_line_a_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(WEBHOOK))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"targets": [{**PAGERDUTY, "enabled": "yes", "timeout_s": -1}, {**SLACK, "colour": "red"}]}
        )
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("targets: [\n  - name: x\n  bad")

    code, lines = validate(good, bad, broken)

    assert code == 1
    assert lines == [
        f"{bad} targets[0] 'pagerduty-prod': enabled must be true or false",
        f"{bad} targets[0] 'pagerduty-prod': timeout_s must be a positive number of seconds",
        f"{bad} targets[1] 'slack-ops': unknown keys ['colour']; allowed "
        "['api_key', 'api_token', 'basic_auth', 'bearer_token', 'enabled', 'fallback', "
        "'fallback_after_s', 'fallback_priorities', 'filter', 'format', 'group_by', 'group_max_alerts', "
        "'group_wait_s', 'headers', 'max_retries', "
        "'name', 'rate_limit', 'resolve_only_if_fired', 'retry_base_s', 'retry_max_backoff_s', "
        "'routing_key', 'signing_secret', 'smtp', 'template', 'timeout_s', 'type', 'url', "
        "'url_is_public']",
        f"{broken}: not valid YAML or JSON at line 2",
    ]
    assert "R0UT1NG" not in "\n".join(lines)


def test_validate_checks_the_files_as_one_set(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(WEBHOOK))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**WEBHOOK, "fallback": ["nowhere"]}))
    code, lines = validate(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert code == 1
    assert lines == ["target name 'ops-webhook' is defined twice"]


def test_validate_reports_a_missing_file(tmp_path: Path) -> None:
    code, lines = validate(tmp_path / "nope.yaml")
    assert (code, lines) == (1, [f"{tmp_path / 'nope.yaml'}: cannot be read (FileNotFoundError)"])


# --- the destinations of round two: msteams, opsgenie, email, discord; templates; retry knobs ---

MSTEAMS = {"name": "teams", "type": "msteams", "url": "https://prod.logic.azure.com/workflows/1/invoke?sig=x"}
OPSGENIE = {
    "name": "genie",
    "type": "opsgenie",
    "url": "https://api.opsgenie.com/v2/alerts",
    "api_key": "k3y",
}
DISCORD = {"name": "disc", "type": "discord", "url": "https://discord.com/api/webhooks/1/t0k"}
SMTP = {"host": "smtp.example.com", "from": "alerts@example.com", "to": ["oncall@example.com"]}
EMAIL = {"name": "mail", "type": "email", "smtp": SMTP}

MORE_AGREEMENT = [
    pytest.param(MSTEAMS, True, id="msteams"),
    pytest.param(OPSGENIE, True, id="opsgenie"),
    pytest.param(DISCORD, True, id="discord"),
    pytest.param(EMAIL, True, id="email"),
    pytest.param({**EMAIL, "smtp": {**SMTP, "port": 2525, "starttls": False, "username": "u", "password": "p"}}, True, id="email-options"),
    pytest.param({**WEBHOOK, "template": {"title": "{{ alert_name }}", "text": "{{ annotations.summary }}"}}, True, id="template"),
    pytest.param({**WEBHOOK, "max_retries": 0, "retry_base_s": 0.5, "retry_max_backoff_s": 30}, True, id="retry-knobs"),
    pytest.param({**WEBHOOK, "resolve_only_if_fired": True}, True, id="resolve-only-if-fired"),
    pytest.param({k: v for k, v in OPSGENIE.items() if k != "api_key"}, False, id="opsgenie-without-key"),
    pytest.param({**OPSGENIE, "format": "webhook"}, False, id="opsgenie-format-webhook"),
    pytest.param({**EMAIL, "url": "https://smtp.example.com/"}, False, id="email-with-url"),
    pytest.param({"name": "mail", "type": "email"}, False, id="email-without-smtp"),
    pytest.param({**WEBHOOK, "smtp": SMTP}, False, id="webhook-with-smtp"),
    pytest.param({k: v for k, v in WEBHOOK.items() if k != "url"}, False, id="webhook-without-url"),
    pytest.param({**EMAIL, "smtp": {**SMTP, "to": []}}, False, id="email-no-recipient"),
    pytest.param({**EMAIL, "smtp": {**SMTP, "from": "not-an-address"}}, False, id="email-bad-from"),
    pytest.param({**EMAIL, "smtp": {**SMTP, "port": 0}}, False, id="email-port-zero"),
    pytest.param({**EMAIL, "smtp": {**SMTP, "starttls": "yes"}}, False, id="email-starttls-string"),
    pytest.param({**WEBHOOK, "template": {"subject": "x"}}, False, id="template-unknown-key"),
    pytest.param({**WEBHOOK, "max_retries": -1}, False, id="max-retries-negative"),
    pytest.param({**WEBHOOK, "max_retries": 2.5}, False, id="max-retries-fraction"),
    pytest.param({**WEBHOOK, "retry_base_s": 0}, False, id="retry-base-zero"),
    pytest.param({**WEBHOOK, "resolve_only_if_fired": "true"}, False, id="resolve-only-if-fired-string"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "valid"), MORE_AGREEMENT)
def test_the_schema_and_the_parser_agree_on_the_new_destinations(raw: dict[str, Any], valid: bool) -> None:
    test_the_schema_and_the_parser_agree(raw, valid)


def test_a_template_syntax_error_is_refused_naming_target_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**WEBHOOK, "template": {"text": "{{ alert_name }}\n{% if %}"}}))
    code, lines = validate(bad)
    assert code == 1
    assert lines[0].startswith(f"{bad} 'ops-webhook': template.text: syntax error at line 2")


def test_smtp_problems_name_the_nested_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**EMAIL, "smtp": {**SMTP, "colour": "red", "port": "25"}}))
    code, lines = validate(bad)
    assert code == 1
    assert f"{bad} 'mail': smtp.port must be a port number, 1 to 65535" in lines
    assert any("smtp has unknown keys ['colour']" in line for line in lines), lines


def test_an_email_password_never_shows_in_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**EMAIL, "smtp": {**SMTP, "password": "hunter2-secret"}}))
    code, lines = validate(bad)
    assert code == 1
    assert lines == [f"{bad} 'mail': smtp: username and password go together"]
