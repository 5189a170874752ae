# Over 300 lines: the target model, its filter, redaction of every secret and the reloading registry.
"""Targets (docs/design.md (Targets and payloads)): the model, filters, redaction of every
secret in every representation, and the registry that reloads them from a source on change.
Parsing a target's configuration is ``publishing.target_config``."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit

from publishing.alert import EnrichedAlert
from publishing.breaker import RateLimit
from publishing.errors import ConfigError, UnknownTargetError
from publishing.retry import RetryPolicy

log = logging.getLogger(__name__)

REDACTED = "***"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A header whose name suggests a credential is a secret.
_SECRET_HEADER = re.compile(r"auth|token|secret|key|password|passwd|signature|cookie|credential", re.I)
# Shorter pieces of a URL are left in free text (see ``_url_secrets``); a path segment or query
# value at least ``_MIN_TOKEN_CHARS`` long is scrubbed even on its own, as a token would be.
_MIN_URL_PIECE_CHARS = 8
_MIN_TOKEN_CHARS = 16
# The characters requests leaves unquoted when it re-quotes a URL (``requote_uri``).
_REQUOTE_SAFE = "!#$%&'()*+,/:;=?@[]~"


class TargetType(StrEnum):
    PAGERDUTY = "pagerduty"
    SLACK = "slack"
    ROOTLY = "rootly"
    WEBHOOK = "webhook"
    MSTEAMS = "msteams"
    OPSGENIE = "opsgenie"
    EMAIL = "email"
    DISCORD = "discord"


class TargetFormat(StrEnum):
    PAGERDUTY = "pagerduty"
    SLACK = "slack"
    ROOTLY = "rootly"
    WEBHOOK = "webhook"
    ALERTMANAGER = "alertmanager"
    MSTEAMS = "msteams"
    OPSGENIE = "opsgenie"
    EMAIL = "email"
    DISCORD = "discord"


ALLOWED_FORMATS: Mapping[TargetType, frozenset[TargetFormat]] = {
    TargetType.PAGERDUTY: frozenset({TargetFormat.PAGERDUTY}),
    TargetType.SLACK: frozenset({TargetFormat.SLACK}),
    TargetType.ROOTLY: frozenset({TargetFormat.ROOTLY}),
    TargetType.WEBHOOK: frozenset({TargetFormat.WEBHOOK, TargetFormat.ALERTMANAGER}),
    TargetType.MSTEAMS: frozenset({TargetFormat.MSTEAMS}),
    TargetType.OPSGENIE: frozenset({TargetFormat.OPSGENIE}),
    TargetType.EMAIL: frozenset({TargetFormat.EMAIL}),
    TargetType.DISCORD: frozenset({TargetFormat.DISCORD}),
}


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


@dataclass(frozen=True)
class SmtpConfig:
    """Where an email target's mail goes: an SMTP relay, STARTTLS and login by default."""

    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # A PEM file of the certificates to trust for STARTTLS (a private relay's own CA).
    ca_file: str | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def to_public_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "starttls": self.starttls,
            "username": self.username,
            **({"password": REDACTED} if self.password else {}),
            "from": self.sender,
            "to": list(self.recipients),
        }


@dataclass(frozen=True)
class MessageTemplate:
    """Jinja2 sources for a target's title and text (``publishing.templates`` renders them)."""

    title: str | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("title", self.title), ("text", self.text)) if v is not None}


@dataclass(frozen=True)
class RetryOverrides:
    """A target's own retry knobs; ``None`` keeps the priority's."""

    max_retries: int | None = None
    base_s: float | None = None
    max_backoff_s: float | None = None

    def apply(self, policy: RetryPolicy) -> RetryPolicy:
        return replace(
            policy,
            max_retries=policy.max_retries if self.max_retries is None else self.max_retries,
            base_s=policy.base_s if self.base_s is None else self.base_s,
            max_backoff_s=policy.max_backoff_s if self.max_backoff_s is None else self.max_backoff_s,
        )

    def to_dict(self) -> dict[str, float]:
        return {
            k: v
            for k, v in (
                ("max_retries", self.max_retries),
                ("retry_base_s", self.base_s),
                ("retry_max_backoff_s", self.max_backoff_s),
            )
            if v is not None
        }


@dataclass(frozen=True)
class Grouping:
    """Storm grouping (docs/design.md (Storm grouping)): alerts with the same values of the
    ``by`` labels arriving within ``wait_s`` go out as one message, which lists at most
    ``max_listed`` of them where the format is read by people (``None``: as many as fit)."""

    by: tuple[str, ...]
    wait_s: float
    max_listed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"group_by": list(self.by), "group_wait_s": self.wait_s}
        if self.max_listed is not None:
            data["group_max_alerts"] = self.max_listed
        return data


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
    # Opsgenie's API key, sent as ``Authorization: GenieKey``.
    api_key: str | None = None
    smtp: SmtpConfig | None = None
    template: MessageTemplate | None = None
    retry: RetryOverrides = field(default_factory=RetryOverrides)
    # Send a resolve only when a firing of the alert was delivered to this target
    # (prometheus/alertmanager#878); otherwise the resolve ends ``superseded``.
    resolve_only_if_fired: bool = False
    rate_limit: RateLimit | None = None
    # The operator's word that path and query hold no credential: the URL is then shown whole.
    url_is_public: bool = False
    # Where this target's jobs go while it is down (see ``publishing.delivery``).
    fallback: tuple[str, ...] = ()
    fallback_after_s: float = 60.0
    fallback_priorities: frozenset[str] = frozenset({"high"})
    group: Grouping | None = None

    def secrets(self) -> list[str]:
        """Every secret value this target holds (for redaction and leak checks)."""
        values = [self.routing_key, self.api_token, self.bearer_token, self.signing_secret, self.api_key]
        if self.smtp is not None:
            values.append(self.smtp.password)
        if self.basic_auth:
            values.append(self.basic_auth.password)
        parts = urlsplit(self.url)
        if parts.password:
            values.append(parts.password)
        if not self.url_is_public:
            values += _url_secrets(self.url, parts)
        values.extend(v for k, v in self.headers.items() if is_secret_header(k))
        return list(dict.fromkeys(v for v in values if v))

    @property
    def public_url(self) -> str:
        """The URL as it may be shown: scheme, host and port. Path and query often carry the
        credential (Slack, Teams, Discord, most incoming webhooks), so they show as ``***``
        unless the target says its URL is public; a password in the URL never shows."""
        try:
            parts = urlsplit(self.url)
        except ValueError:
            return REDACTED
        netloc = parts.netloc
        if parts.username is not None or parts.password is not None:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        rest = _after_host(self.url, parts)
        if not self.url_is_public and rest not in ("", "/"):
            rest = f"/{REDACTED}"
        return f"{parts.scheme}://{netloc}{rest}"

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
            **self.retry.to_dict(),
        }
        if self.resolve_only_if_fired:
            data["resolve_only_if_fired"] = True
        if self.group is not None:
            data.update(self.group.to_dict())
        if self.smtp is not None:
            data["smtp"] = self.smtp.to_public_dict()
        if self.template is not None:
            data["template"] = self.template.to_dict()
        for name in ("routing_key", "api_token", "bearer_token", "signing_secret", "api_key"):
            if getattr(self, name):
                data[name] = REDACTED
        if self.basic_auth:
            data["basic_auth"] = {"username": self.basic_auth.username, "password": REDACTED}
        return data

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, type={self.type.value!r}, url={self.public_url!r})"

    def retry_policy(self, base: RetryPolicy) -> RetryPolicy:
        """``base`` (the priority's policy) with this target's own retry knobs applied."""
        return self.retry.apply(base)

    def redact(self, text: str) -> str:
        """``text`` with the URL shown as ``public_url`` and every secret (the URL's path and
        query included, as requests and urllib3 quote them apart from the host) as ``***``."""
        text = text.replace(self.url, self.public_url)
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


def _after_host(url: str, parts: SplitResult) -> str:
    """Path, query and fragment as written in ``url``."""
    return url.partition("://")[2][len(parts.netloc) :]


def _url_secrets(url: str, parts: SplitResult) -> list[str]:
    """What of a URL is scrubbed from free text: the whole URL, its path and query together
    and apart (with and without percent-encoding, as requests re-quotes them), and each path
    segment or query value long enough to be a token on its own. A piece shorter than
    ``_MIN_URL_PIECE_CHARS`` (``/alerts``, ``/x``) is left in free text: it is no credential,
    and scrubbing it would mangle ordinary words in every log line."""
    rest = _after_host(url, parts)
    if rest in ("", "/"):
        return []
    path = parts.path.strip("/")
    pieces = [rest.lstrip("/"), path, parts.query, parts.fragment]
    pieces += [p for p in path.split("/") if len(p) >= _MIN_TOKEN_CHARS]
    pieces += [v for _, v in parse_qsl(parts.query) if len(v) >= _MIN_TOKEN_CHARS]
    variants = [v for p in pieces for v in (p, unquote(p), quote(p, safe=_REQUOTE_SAFE))]
    return [url, *(v for v in variants if len(v) >= _MIN_URL_PIECE_CHARS)]


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
