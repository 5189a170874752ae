"""A target's configuration, parsed and validated: every field's rule, an unknown key refused
with the allowed ones named, a problem reported with where it is (file, target, field)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from publishing.breaker import RateLimit
from publishing.errors import ConfigError
from publishing.targets import (
    ALLOWED_FORMATS,
    DNS_LABEL,
    BasicAuth,
    Target,
    TargetFilter,
    TargetFormat,
    TargetType,
)

_KNOWN_KEYS = frozenset(
    {
        "name", "type", "format", "url", "enabled", "headers", "filter", "timeout_s",
        "routing_key", "api_token", "bearer_token", "basic_auth", "signing_secret", "rate_limit",
        "fallback", "fallback_after_s", "fallback_priorities", "url_is_public",
    }
)  # fmt: skip
# The providers' documented limits, applied unless a target sets its own (or ``false``):
# PagerDuty's Events API takes 120 events a minute per routing key, a Slack incoming
# webhook one message a second.
DEFAULT_RATE_LIMITS: Mapping[TargetType, RateLimit] = {
    TargetType.PAGERDUTY: RateLimit(interval_s=0.5, burst=1),
    TargetType.SLACK: RateLimit(interval_s=1.0, burst=1),
}
_FILTER_KEYS = frozenset({"labels", "labels_regex", "severity", "status"})


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _strings(value: Any, where: str, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _fail(where, f"{what} must be a mapping of strings")
    return {str(k): v for k, v in value.items()}


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key} must be a non-empty string")
    return value


def parse_filter(raw: Any, where: str) -> TargetFilter:
    if raw is None:
        return TargetFilter()
    if not isinstance(raw, dict):
        raise _fail(where, "filter must be a mapping")
    unknown = set(raw) - _FILTER_KEYS
    if unknown:
        raise _fail(where, f"filter has unknown keys {sorted(unknown)}; allowed {sorted(_FILTER_KEYS)}")
    regexes: dict[str, re.Pattern[str]] = {}
    for key, pattern in _strings(raw.get("labels_regex"), where, "filter.labels_regex").items():
        try:
            regexes[key] = re.compile(pattern)
        except re.error as exc:
            raise _fail(where, f"filter.labels_regex.{key} is not a valid regex: {exc}") from None

    def string_set(key: str) -> frozenset[str] | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(where, f"filter.{key} must be a list of strings")
        return frozenset(value)

    status = string_set("status")
    if status and not status <= {"firing", "resolved"}:
        raise _fail(where, f"filter.status may hold only firing and resolved, got {sorted(status)}")
    return TargetFilter(
        labels=_strings(raw.get("labels"), where, "filter.labels"),
        labels_regex=regexes,
        severity=string_set("severity"),
        status=status,
    )


def parse_rate_limit(raw: Any, target_type: TargetType, where: str) -> RateLimit | None:
    """``{per_s: N}`` or ``{per_min: N}`` with an optional ``burst``; ``false`` for none;
    absent for the provider's documented default."""
    if raw is None:
        return DEFAULT_RATE_LIMITS.get(target_type)
    if raw is False:
        return None
    if (
        not isinstance(raw, dict)
        or set(raw) - {"per_s", "per_min", "burst"}
        or len(set(raw) & {"per_s", "per_min"}) != 1
    ):
        raise _fail(where, "rate_limit must be {per_s: N} or {per_min: N} (optionally with burst), or false")
    per_s = raw["per_s"] if "per_s" in raw else raw["per_min"] / 60 if _positive(raw["per_min"]) else 0
    burst = raw.get("burst", 1)
    if not _positive(per_s) or isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise _fail(where, "rate_limit needs a positive rate and a whole burst of at least 1")
    return RateLimit(interval_s=1 / float(per_s), burst=burst)


def _parse_fallback(raw: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    fallback = raw.get("fallback", [])
    if isinstance(fallback, str):
        fallback = [fallback]
    if not isinstance(fallback, list) or not all(isinstance(f, str) and DNS_LABEL.match(f) for f in fallback):
        raise _fail(where, "fallback must be a list of target names")
    if name in fallback:
        raise _fail(where, "a target cannot be its own fallback")
    after = raw.get("fallback_after_s", 60.0)
    if not _positive(after) and after != 0:
        raise _fail(where, "fallback_after_s must be a number of seconds >= 0")
    priorities = raw.get("fallback_priorities", ["high"])
    if not isinstance(priorities, list) or not set(priorities) <= {"high", "medium", "low"}:
        raise _fail(where, "fallback_priorities must be a list of high, medium, low")
    return {
        "fallback": tuple(fallback),
        "fallback_after_s": float(after),
        "fallback_priorities": frozenset(priorities),
    }


def _positive(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def parse_target(raw: Any, where: str = "target") -> Target:
    """Validate one target object; errors name the target and never echo a secret."""
    try:
        return _parse_target(raw, where)
    except (TypeError, ValueError, OverflowError) as exc:
        # Numbers too large for a float, unhashable list entries and the like.
        name = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else None
        label = f"{where} {name!r}" if name else where
        raise _fail(label, f"invalid value ({type(exc).__name__})") from None


def _parse_target(raw: Any, where: str) -> Target:
    if not isinstance(raw, dict):
        raise _fail(where, "a target must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise _fail(
            where,
            f"name {name!r} must be a DNS-1123 label (lower-case a-z, 0-9 and '-', at most 63)",
        )
    where = f"{where} {name!r}"
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    try:
        target_type = TargetType(str(raw.get("type")))
    except ValueError:
        raise _fail(where, f"type must be one of {[t.value for t in TargetType]}") from None
    try:
        target_format = TargetFormat(raw.get("format") or target_type.value)
    except ValueError:
        raise _fail(where, f"format must be one of {[f.value for f in TargetFormat]}") from None
    if target_format not in ALLOWED_FORMATS[target_type]:
        allowed = sorted(f.value for f in ALLOWED_FORMATS[target_type])
        raise _fail(where, f"type {target_type.value} takes format {allowed}, not {target_format.value}")
    url = raw.get("url")
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        parts = None
    if (
        not isinstance(url, str)
        or parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
    ):
        raise _fail(where, "url must be an absolute http:// or https:// URL")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail(where, "enabled must be true or false")
    url_is_public = raw.get("url_is_public", False)
    if not isinstance(url_is_public, bool):
        raise _fail(where, "url_is_public must be true or false")
    if url_is_public and target_type is TargetType.SLACK:
        raise _fail(where, "url_is_public cannot be true for a slack target: its URL is its credential")
    timeout = raw.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise _fail(where, "timeout_s must be a positive number of seconds")
    basic = raw.get("basic_auth")
    basic_auth = None
    if basic is not None:
        if not isinstance(basic, dict) or not all(
            isinstance(basic.get(k), str) for k in ("username", "password")
        ):
            raise _fail(where, "basic_auth must be {username, password}")
        basic_auth = BasicAuth(basic["username"], basic["password"])
    target = Target(
        name=name,
        type=target_type,
        format=target_format,
        url=url,
        enabled=enabled,
        headers=_strings(raw.get("headers"), where, "headers"),
        filter=parse_filter(raw.get("filter"), where),
        timeout_s=float(timeout) if timeout is not None else None,
        routing_key=_optional_str(raw, "routing_key", where),
        api_token=_optional_str(raw, "api_token", where),
        bearer_token=_optional_str(raw, "bearer_token", where),
        basic_auth=basic_auth,
        signing_secret=_optional_str(raw, "signing_secret", where),
        rate_limit=parse_rate_limit(raw.get("rate_limit"), target_type, where),
        url_is_public=url_is_public,
        **_parse_fallback(raw, name, where),
    )
    if target_type is TargetType.PAGERDUTY and not target.routing_key:
        raise _fail(where, "a pagerduty target needs routing_key")
    if target_type is TargetType.ROOTLY and not target.api_token:
        raise _fail(where, "a rootly target needs api_token")
    return target


def parse_document(document: Any, where: str) -> list[Target]:
    """One target object, or ``{"targets": [...]}``."""
    if isinstance(document, dict) and "targets" in document:
        items = document["targets"]
        if not isinstance(items, list):
            raise _fail(where, "targets must be a list")
        return [parse_target(item, f"{where} targets[{i}]") for i, item in enumerate(items)]
    if document is None:
        return []
    return [parse_target(document, where)]
