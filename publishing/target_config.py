# Over 300 lines: every field's rule of a targets file, beside the others it interacts with.
"""A target's configuration, parsed and validated against its declaration
(``publishing.target_schema``): every problem reported on one line with where it is (file,
target, field), an unknown key refused with the allowed ones named, no secret echoed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from publishing.breaker import RateLimit
from publishing.errors import ConfigError
from publishing.events import EventsSpec
from publishing.target_schema import (
    GROUP_FIELDS,
    NO_GROUPING,
    NOT_HTTP,
    REQUIRED_SECRET,
    FilterSpec,
    RateLimitSpec,
    SmtpSpec,
    TargetsDocument,
    TargetSpec,
    TemplateSpec,
)
from publishing.targets import (
    ALLOWED_FORMATS,
    BasicAuth,
    Grouping,
    MessageTemplate,
    RetryOverrides,
    SmtpConfig,
    Target,
    TargetFilter,
    TargetFormat,
    TargetType,
)
from publishing.templates import TemplateProblem, compile_template

# The providers' documented limits, applied unless a target sets its own (or ``false``):
# PagerDuty's Events API takes 120 events a minute per routing key, a Slack incoming
# webhook one message a second. A Teams webhook takes 4 requests a second (longer windows
# answer 429 with ``retry_after``, which pauses the target); a Discord webhook 30 messages a
# minute to its channel, in bursts of 5; Opsgenie's alert limits depend on the plan, so one
# request a second, which every plan takes.
DEFAULT_RATE_LIMITS: Mapping[TargetType, RateLimit] = {
    TargetType.PAGERDUTY: RateLimit(interval_s=0.5, burst=1),
    TargetType.SLACK: RateLimit(interval_s=1.0, burst=1),
    TargetType.MSTEAMS: RateLimit(interval_s=0.25, burst=4),
    TargetType.DISCORD: RateLimit(interval_s=2.0, burst=5),
    TargetType.OPSGENIE: RateLimit(interval_s=1.0, burst=1),
}
_NON_EMPTY = "must be a non-empty string"
_TRUE_OR_FALSE = "must be true or false"
# What a field must be, by its dotted path, said once for every way a value can be wrong.
_RULES: Mapping[str, str] = {
    "type": f"must be one of {[t.value for t in TargetType]}",
    "format": f"must be one of {[f.value for f in TargetFormat]}",
    "url": "must be an absolute http:// or https:// URL",
    "enabled": _TRUE_OR_FALSE,
    "url_is_public": _TRUE_OR_FALSE,
    "timeout_s": "must be a positive number of seconds",
    "headers": "must be a mapping of strings",
    "basic_auth": "must be {username, password}",
    "filter": "must be a mapping",
    "filter.labels": "must be a mapping of strings",
    "filter.labels_regex": "must be a mapping of strings",
    "filter.severity": "must be a list of strings",
    "filter.status": "may hold only firing and resolved",
    "rate_limit": "must be {per_s: N} or {per_min: N} with positive N (optionally a whole burst >= 1), or false",
    "fallback": "must be a list of target names",
    "fallback_after_s": "must be a number of seconds >= 0",
    "fallback_priorities": "must be a list of high, medium, low",
    "routing_key": _NON_EMPTY,
    "api_token": _NON_EMPTY,
    "bearer_token": _NON_EMPTY,
    "signing_secret": _NON_EMPTY,
    "api_key": _NON_EMPTY,
    "smtp": "must be {host, from, to: [...]} (optionally port, starttls, username, password, ca_file)",
    "smtp.host": _NON_EMPTY,
    "smtp.port": "must be a port number, 1 to 65535",
    "smtp.starttls": _TRUE_OR_FALSE,
    "smtp.from": "must be an email address",
    "smtp.to": "must be a non-empty list of email addresses",
    "template": "must be {title, text} of strings",
    "max_retries": "must be a whole number >= 0",
    "retry_base_s": "must be a positive number of seconds",
    "retry_max_backoff_s": "must be a positive number of seconds",
    "resolve_only_if_fired": _TRUE_OR_FALSE,
    "group_by": "must be a list of label names ([a-zA-Z_][a-zA-Z0-9_]*)",
    "group_wait_s": "must be a positive number of seconds",
    "group_max_alerts": "must be a whole number >= 1",
}
# Objects whose unknown keys are listed with the allowed ones (the others say their shape).
_KEYED: Mapping[str, type[BaseModel]] = {
    "": TargetSpec,
    "filter": FilterSpec,
    "smtp": SmtpSpec,
    "template": TemplateSpec,
}
_NAME_RULE = "must be a DNS-1123 label (lower-case a-z, 0-9 and '-', at most 63)"


class TargetConfigError(ConfigError):
    """A target's configuration is invalid.

    ``problems`` holds one line a problem, each naming where it is; the message is the first.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


def _path(loc: tuple[int | str, ...]) -> str:
    """The dotted field path of an error location, without pydantic's union-branch tags."""
    fields: list[str] = []
    model: type[BaseModel] | None = TargetSpec
    for part in loc:
        if model is not None and isinstance(part, str) and part in _field_names(model):
            fields.append(part)
            model = _KEYED.get(".".join(fields)) if len(fields) == 1 else None
        elif model is not None:
            break
    return ".".join(fields)


def _field_names(model: type[BaseModel]) -> set[str]:
    """A model's keys as a file spells them (``from`` for ``sender``)."""
    return {info.alias or name for name, info in model.model_fields.items()}


def _problems(error: ValidationError, name: str | None) -> list[str]:
    problems: list[str] = []
    unknown: dict[str, list[str]] = {}
    for item in error.errors():
        path = _path(item["loc"])
        if item["type"] == "extra_forbidden" and path in _KEYED:
            unknown.setdefault(path, []).append(str(item["loc"][-1]))
            continue
        if path == "name":
            problems.insert(0, f"name {name!r} {_NAME_RULE}")
            continue
        rule = _RULES.get(path) or _RULES.get(path.partition(".")[0]) or item["msg"]
        problem = f"{path} {rule}" if path else rule
        if problem not in problems:
            problems.append(problem)
    for path, keys in unknown.items():
        allowed = sorted(_field_names(_KEYED[path]))
        owner = f"{path} has unknown" if path else "unknown"
        problems.insert(0 if not path else len(problems), f"{owner} keys {sorted(keys)}; allowed {allowed}")
    return problems


def _rate_limit(spec: RateLimitSpec | bool | None, target_type: TargetType) -> RateLimit | None:
    if spec is None:
        return DEFAULT_RATE_LIMITS.get(target_type)
    if spec is False or spec is True:
        return None
    return RateLimit(interval_s=1 / spec.per_second, burst=spec.burst)


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    return [value] if isinstance(value, str) else list(value) if value is not None else None


def _filter(spec: FilterSpec | None) -> tuple[TargetFilter, list[str]]:
    if spec is None:
        return TargetFilter(), []
    problems: list[str] = []
    regexes: dict[str, re.Pattern[str]] = {}
    for key, pattern in (spec.labels_regex or {}).items():
        try:
            regexes[key] = re.compile(pattern)
        except re.error as exc:
            problems.append(f"filter.labels_regex.{key} is not a valid regex: {exc}")
    severity, status = _as_list(spec.severity), _as_list(spec.status)
    built = TargetFilter(
        labels=dict(spec.labels or {}),
        labels_regex=regexes,
        severity=frozenset(severity) if severity is not None else None,
        status=frozenset(status) if status is not None else None,
    )
    return built, problems


def _cross_field_problems(spec: TargetSpec, target_format: TargetFormat) -> list[str]:
    """What the field types cannot say: the rules between fields, and the URL's host."""
    problems = []
    if target_format not in ALLOWED_FORMATS[spec.type]:
        allowed = sorted(f.value for f in ALLOWED_FORMATS[spec.type])
        problems.append(f"format: type {spec.type.value} takes format {allowed}, not {target_format.value}")
    if spec.type is NOT_HTTP:
        if spec.url is not None:
            problems.append("url: an email target has smtp, not url")
        if spec.smtp is None:
            problems.append("smtp: an email target needs smtp")
        elif (spec.smtp.username is None) != (spec.smtp.password is None):
            problems.append("smtp: username and password go together")
    else:
        if spec.smtp is not None:
            problems.append(f"smtp: only an email target takes smtp, not {spec.type.value}")
        try:
            host = urlsplit(spec.url).hostname if spec.url is not None else None
        except ValueError:
            host = None
        if not host:
            problems.append(f"url {_RULES['url']}")
    if spec.url_is_public and spec.type is TargetType.SLACK:
        problems.append("url_is_public cannot be true for a slack target: its URL is its credential")
    if spec.name in (_as_list(spec.fallback) or []):
        problems.append("fallback: a target cannot be its own fallback")
    problems += _template_problems(spec.template)
    problems += _grouping_problems(spec)
    secret = REQUIRED_SECRET.get(spec.type)
    if secret and not getattr(spec, secret):
        problems.append(f"{secret}: a {spec.type.value} target needs {secret}")
    return problems


def _grouping_problems(spec: TargetSpec) -> list[str]:
    """Grouping is whole (``group_by`` with ``group_wait_s``) and for types that can carry
    several alerts in one message."""
    given = [k for k in GROUP_FIELDS if getattr(spec, k) is not None]
    if not given:
        return []
    if spec.type in NO_GROUPING:
        return [
            f"{given[0]}: a {spec.type.value} target cannot group alerts: its provider keeps one "
            "incident per alert, so one message for many would merge them"
        ]
    if spec.group_by is None:
        return [f"{given[0]}: needs group_by (the labels whose values make a group)"]
    if spec.group_wait_s is None:
        return ["group_by: needs group_wait_s (how long a group collects alerts before it is sent)"]
    if len(set(spec.group_by)) != len(spec.group_by):
        return ["group_by: names a label twice"]
    return []


def _grouping(spec: TargetSpec) -> Grouping | None:
    if spec.group_by is None or spec.group_wait_s is None:
        return None
    return Grouping(tuple(spec.group_by), spec.group_wait_s, spec.group_max_alerts)


def _template_problems(spec: TemplateSpec | None) -> list[str]:
    """Each template compiles (a syntax error named by its line in the template)."""
    problems = []
    for key in ("title", "text"):
        source = getattr(spec, key) if spec is not None else None
        if source is None:
            continue
        try:
            compile_template(source)
        except TemplateProblem as exc:
            problems.append(f"template.{key}: {exc}")
    return problems


def _smtp(spec: SmtpSpec | None) -> SmtpConfig | None:
    if spec is None:
        return None
    return SmtpConfig(
        host=spec.host,
        port=spec.port,
        starttls=spec.starttls,
        username=spec.username,
        password=spec.password,
        sender=spec.sender,
        recipients=tuple(spec.to),
        ca_file=spec.ca_file,
    )


def check_target(raw: Any, where: str = "target") -> Target:
    """Validate one target object, raising ``TargetConfigError`` with every problem found."""
    if not isinstance(raw, dict):
        raise TargetConfigError([f"{where}: a target must be a mapping"])
    raw_name = raw.get("name")
    name = raw_name if isinstance(raw_name, str) else None
    try:
        spec = TargetSpec.model_validate(raw)
    except ValidationError as exc:
        problems = _problems(exc, raw_name)
        label = f"{where} {name!r}" if name and not problems[0].startswith("name ") else where
        raise TargetConfigError([f"{label}: {p}" for p in problems]) from None
    where = f"{where} {spec.name!r}"
    target_format = spec.format or TargetFormat(spec.type.value)
    target_filter, problems = _filter(spec.filter)
    problems += _cross_field_problems(spec, target_format)
    if problems:
        raise TargetConfigError([f"{where}: {p}" for p in problems])
    basic = spec.basic_auth
    smtp = _smtp(spec.smtp)
    template = spec.template
    return Target(
        name=spec.name,
        type=spec.type,
        format=target_format,
        url=smtp.url if smtp is not None else spec.url or "",
        enabled=spec.enabled,
        headers=dict(spec.headers or {}),
        filter=target_filter,
        timeout_s=spec.timeout_s,
        routing_key=spec.routing_key,
        api_token=spec.api_token,
        bearer_token=spec.bearer_token,
        basic_auth=BasicAuth(basic.username, basic.password) if basic else None,
        signing_secret=spec.signing_secret,
        api_key=spec.api_key,
        smtp=smtp,
        template=MessageTemplate(template.title, template.text) if template is not None else None,
        retry=RetryOverrides(spec.max_retries, spec.retry_base_s, spec.retry_max_backoff_s),
        resolve_only_if_fired=spec.resolve_only_if_fired,
        rate_limit=_rate_limit(spec.rate_limit, spec.type),
        url_is_public=spec.url_is_public,
        fallback=tuple(_as_list(spec.fallback) or ()),
        fallback_after_s=spec.fallback_after_s,
        fallback_priorities=frozenset(spec.fallback_priorities),
        group=_grouping(spec),
    )


def parse_target(raw: Any, where: str = "target") -> Target:
    """Validate one target object; errors name the target and never echo a secret."""
    try:
        return check_target(raw, where)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        # Whatever slips past the declaration (a number too large for a float and the like).
        name = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else None
        label = f"{where} {name!r}" if name else where
        raise TargetConfigError([f"{label}: invalid value ({type(exc).__name__})"]) from None


def document_problems(document: Any, where: str) -> tuple[list[Target], list[str]]:
    """The targets of a file's document (``{targets: [...]}``, one target object, or empty),
    and every problem found in it, one line each."""
    if document is None:
        return [], []
    if isinstance(document, dict) and "targets" in document:
        unknown = sorted(str(k) for k in set(document) - set(TargetsDocument.model_fields))
        items = document["targets"]
        if not isinstance(items, list):
            return [], [f"{where}: targets must be a list"]
        problems = [f"{where}: unknown keys {unknown}; allowed ['targets', 'events']"] if unknown else []
        problems += events_problems(document.get("events"), where)
        targets = []
        for i, item in enumerate(items):
            try:
                targets.append(parse_target(item, f"{where} targets[{i}]"))
            except TargetConfigError as exc:
                problems.extend(exc.problems)
        return targets, problems
    try:
        return [parse_target(document, where)], []
    except TargetConfigError as exc:
        return [], exc.problems


def events_problems(events: Any, where: str) -> list[str]:
    """Problems of a document's ``events:`` key (docs/design.md (Events)), one line each."""
    if events is None:
        return []
    try:
        EventsSpec.model_validate(events)
    except ValidationError as exc:
        return [f"{where} events.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []


def parse_document(document: Any, where: str) -> list[Target]:
    """One target object, or ``{"targets": [...]}``; ``TargetConfigError`` names every problem."""
    targets, problems = document_problems(document, where)
    if problems:
        raise TargetConfigError(problems)
    return targets
