# Over 300 lines: the target model and its validation, every field's rule next to the others.
"""Targets (docs/design.md (Targets and payloads)): validation, filters, the registry that
reloads them from a source on change, and redaction of every secret in every representation."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from publishing.alert import EnrichedAlert
from publishing.breaker import RateLimit
from publishing.errors import ConfigError, UnknownTargetError

log = logging.getLogger(__name__)

REDACTED = "***"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A header whose name suggests a credential is a secret.
_SECRET_HEADER = re.compile(r"auth|token|secret|key|password|passwd|signature|cookie|credential", re.I)


class TargetType(StrEnum):
    PAGERDUTY = "pagerduty"
    SLACK = "slack"
    ROOTLY = "rootly"
    WEBHOOK = "webhook"


class TargetFormat(StrEnum):
    PAGERDUTY = "pagerduty"
    SLACK = "slack"
    ROOTLY = "rootly"
    WEBHOOK = "webhook"
    ALERTMANAGER = "alertmanager"


ALLOWED_FORMATS: Mapping[TargetType, frozenset[TargetFormat]] = {
    TargetType.PAGERDUTY: frozenset({TargetFormat.PAGERDUTY}),
    TargetType.SLACK: frozenset({TargetFormat.SLACK}),
    TargetType.ROOTLY: frozenset({TargetFormat.ROOTLY}),
    TargetType.WEBHOOK: frozenset({TargetFormat.WEBHOOK, TargetFormat.ALERTMANAGER}),
}
_KNOWN_KEYS = frozenset(
    {
        "name", "type", "format", "url", "enabled", "headers", "filter", "timeout_s",
        "routing_key", "api_token", "bearer_token", "basic_auth", "signing_secret", "rate_limit",
        "fallback", "fallback_after_s", "fallback_priorities",
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


def is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


@dataclass(frozen=True)
class TargetFilter:
    """Every given key must match; an empty filter matches every alert."""

    labels: Mapping[str, str] = field(default_factory=dict)
    labels_regex: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    severity: frozenset[str] | None = None
    status: frozenset[str] | None = None

    def matches(self, enriched: EnrichedAlert) -> bool:
        labels = enriched.alert.labels
        if any(labels.get(k) != v for k, v in self.labels.items()):
            return False
        if any(not p.fullmatch(labels.get(k, "")) for k, p in self.labels_regex.items()):
            return False
        if self.severity is not None and enriched.severity not in self.severity:
            return False
        return self.status is None or enriched.alert.status.value in self.status

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.labels:
            result["labels"] = dict(self.labels)
        if self.labels_regex:
            result["labels_regex"] = {k: p.pattern for k, p in self.labels_regex.items()}
        if self.severity is not None:
            result["severity"] = sorted(self.severity)
        if self.status is not None:
            result["status"] = sorted(self.status)
        return result


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, repr=False)
class Target:
    name: str
    type: TargetType
    format: TargetFormat
    url: str
    enabled: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    filter: TargetFilter = field(default_factory=TargetFilter)
    timeout_s: float | None = None
    routing_key: str | None = None
    api_token: str | None = None
    bearer_token: str | None = None
    basic_auth: BasicAuth | None = None
    signing_secret: str | None = None
    rate_limit: RateLimit | None = None
    # Where this target's jobs go while it is down (see ``publishing.delivery``).
    fallback: tuple[str, ...] = ()
    fallback_after_s: float = 60.0
    fallback_priorities: frozenset[str] = frozenset({"high"})

    def secrets(self) -> list[str]:
        """Every secret value this target holds (for redaction and leak checks)."""
        values = [self.routing_key, self.api_token, self.bearer_token, self.signing_secret]
        if self.basic_auth:
            values.append(self.basic_auth.password)
        parts = urlsplit(self.url)
        if self.type is TargetType.SLACK:
            # urllib3 writes host and path apart in its errors: the path is the secret too.
            values += [self.url, parts.path.strip("/"), parts.query]
        if parts.password:
            values.append(parts.password)
        values.extend(v for k, v in self.headers.items() if is_secret_header(k))
        return [v for v in values if v]

    @property
    def public_url(self) -> str:
        """The URL as it may be shown: a Slack webhook URL is itself the secret."""
        if self.type is TargetType.SLACK:
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.netloc}/{REDACTED}"
        parts = urlsplit(self.url)
        if parts.password or parts.username:
            host = parts.netloc.rpartition("@")[2]
            return self.url.replace(parts.netloc, f"{REDACTED}@{host}")
        return self.url

    def to_public_dict(self) -> dict[str, Any]:
        """The target as an API response or a DLQ row may show it: secrets as ``***``."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "format": self.format.value,
            "url": self.public_url,
            "enabled": self.enabled,
            "headers": {k: (REDACTED if is_secret_header(k) else v) for k, v in self.headers.items()},
            "filter": self.filter.to_dict(),
            "timeout_s": self.timeout_s,
            "rate_limit": self.rate_limit.describe() if self.rate_limit else None,
            "fallback": list(self.fallback),
            "fallback_after_s": self.fallback_after_s,
            "fallback_priorities": sorted(self.fallback_priorities),
        }
        for name in ("routing_key", "api_token", "bearer_token", "signing_secret"):
            if getattr(self, name):
                data[name] = REDACTED
        if self.basic_auth:
            data["basic_auth"] = {"username": self.basic_auth.username, "password": REDACTED}
        return data

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, type={self.type.value!r}, url={self.public_url!r})"

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


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
    if not isinstance(fallback, list) or not all(
        isinstance(f, str) and _DNS_LABEL.match(f) for f in fallback
    ):
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
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
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


def check_target_set(targets: list[Target]) -> list[Target]:
    """A whole set of targets is valid: names are unique and every fallback names one of them."""
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise ConfigError(f"target name {target.name!r} is defined twice")
        seen.add(target.name)
    for target in targets:
        unknown = [f for f in target.fallback if f not in seen]
        if unknown:
            raise ConfigError(f"target {target.name!r}: fallback names unknown targets {unknown}")
    return targets


class TargetSource(Protocol):
    """Where a registry's targets come from (``publishing.adapters.target_files``)."""

    def signature(self) -> object:
        """A value that changes whenever what ``load`` would return may have changed."""
        ...

    def load(self) -> list[Target]:
        """The whole, checked set; ``ConfigError`` when it does not validate."""
        ...


class TargetRegistry:
    """The current set of targets, re-read when its files change.

    A change that does not validate is logged and ignored: the last good set stays in force,
    so a typo in one file never stops delivery to every target.
    """

    def __init__(
        self,
        targets: Iterable[Target] = (),
        *,
        source: TargetSource | None = None,
        monotonic: Callable[[], float] | None = None,
        check_interval_s: float = 1.0,
    ) -> None:
        self._source = source
        self._monotonic = monotonic
        self._check_interval_s = check_interval_s
        self._lock = threading.Lock()
        self._targets = {t.name: t for t in targets}
        self._signature: object = None
        self._checked_at = float("-inf")
        self.last_error: str | None = None
        if source is not None:
            self._signature = source.signature()
            self._targets = {t.name: t for t in source.load()}
            self._checked_at = monotonic() if monotonic else 0.0

    def reload_if_changed(self, *, force: bool = False) -> bool:
        if self._source is None:
            return False
        if not force and self._monotonic is not None:
            now = self._monotonic()
            if now - self._checked_at < self._check_interval_s:
                return False
            self._checked_at = now
        signature = self._source.signature()
        if signature == self._signature and not force:
            return False
        with self._lock:
            try:
                targets = self._source.load()
            except (ConfigError, OSError, UnicodeDecodeError) as exc:
                self.last_error = str(exc)
                log.warning("targets not reloaded, keeping the last good set: %s", exc)
                self._signature = signature
                return False
            self._targets = {t.name: t for t in targets}
            self._signature = signature
            self.last_error = None
        log.info("targets reloaded: %d targets", len(targets))
        return True

    def all(self) -> list[Target]:
        self.reload_if_changed()
        return list(self._targets.values())

    def get(self, name: str) -> Target:
        self.reload_if_changed()
        try:
            return self._targets[name]
        except KeyError:
            raise UnknownTargetError(name) from None

    def matching(self, enriched: EnrichedAlert, names: Iterable[str] | None = None) -> list[Target]:
        """Enabled targets whose filter selects the alert (limited to ``names`` when given)."""
        candidates = [self.get(n) for n in names] if names is not None else self.all()
        return [t for t in candidates if t.enabled and t.filter.matches(enriched)]

    def secrets(self) -> list[str]:
        return [s for t in self._targets.values() for s in t.secrets()]
