# Over 300 lines: every setting, its default and its validation message in one table.
"""Settings from the environment (the README, "Configuration"). Every knob has a default; a bad value fails at
start-up with a message naming the variable, the value and what is allowed."""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from publishing.alert import FieldLimits
from publishing.breaker import BreakerConfig
from publishing.errors import ConfigError
from publishing.priority import Priority
from publishing.retry import RetryPolicy

log = logging.getLogger(__name__)

ROLES = ("reader", "operator", "admin")
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_DATABASE_URL = "sqlite:///var/publishing.db"

N = TypeVar("N", int, float)


def _number(environ: Mapping[str, str], name: str, default: N, kind: Callable[[str], N], minimum: float) -> N:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    what = "an integer" if kind is int else "a number"
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not valid: expected {what} >= {minimum:g}") from None
    if (isinstance(value, float) and not math.isfinite(value)) or value < minimum:
        raise ConfigError(f"{name}={raw!r} is not valid: expected {what} >= {minimum:g}")
    return value


def normalise_database_url(url: str) -> str:
    """Pick psycopg2 explicitly: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def parse_api_tokens(raw: str, name: str = "PUBLISHING_API_TOKENS") -> dict[str, str]:
    """``ROLE:TOKEN,ROLE:TOKEN`` into {token: role}. Errors never echo a token."""
    tokens: dict[str, str] = {}
    for position, entry in enumerate(filter(None, (e.strip() for e in raw.split(","))), start=1):
        role, sep, token = entry.partition(":")
        role = role.strip()
        token = token.strip()
        if not sep or role not in ROLES:
            raise ConfigError(
                f"{name}: entry {position} is not valid: expected ROLE:TOKEN with ROLE one of "
                f"{'|'.join(ROLES)}"
            )
        if len(token) < 16:
            raise ConfigError(f"{name}: entry {position} ({role}) has a token shorter than 16 characters")
        tokens[token] = role
    return tokens


_ON, _OFF = ("1", "true", "yes"), ("", "0", "false", "no")


def _set(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables given a value: an empty one stands for its default."""
    return {name: value for name, value in environ.items() if value.strip()}


def _switch(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "")
    value = raw.strip().lower()
    if value not in _ON + _OFF:
        raise ConfigError(f"{name}={raw!r} is not valid: expected 1 or 0")
    return value in _ON


def _retry_policy(environ: Mapping[str, str], prefix: str, base: RetryPolicy) -> RetryPolicy:
    return RetryPolicy(
        max_retries=_number(environ, f"{prefix}MAX_RETRIES", base.max_retries, int, 0),
        base_s=_number(environ, f"{prefix}RETRY_BASE_S", base.base_s, float, 0),
        max_backoff_s=_number(environ, f"{prefix}RETRY_MAX_BACKOFF_S", base.max_backoff_s, float, 0),
        jitter_s=_number(environ, f"{prefix}RETRY_JITTER_S", base.jitter_s, float, 0),
        retry_after_max_s=_number(environ, f"{prefix}RETRY_AFTER_MAX_S", base.retry_after_max_s, float, 0),
    )


def _field_limits(environ: Mapping[str, str]) -> FieldLimits:
    default = FieldLimits()
    return FieldLimits(
        max_labels=_number(environ, "PUBLISHING_MAX_LABELS", default.max_labels, int, 1),
        max_annotations=_number(environ, "PUBLISHING_MAX_ANNOTATIONS", default.max_annotations, int, 1),
        max_name_chars=_number(environ, "PUBLISHING_MAX_LABEL_NAME_CHARS", default.max_name_chars, int, 1),
        max_value_chars=_number(environ, "PUBLISHING_MAX_VALUE_CHARS", default.max_value_chars, int, 1),
        max_metadata_depth=_number(
            environ, "PUBLISHING_MAX_METADATA_DEPTH", default.max_metadata_depth, int, 1
        ),
        max_metadata_bytes=_number(
            environ, "PUBLISHING_MAX_METADATA_BYTES", default.max_metadata_bytes, int, 1
        ),
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (each part of a ``;``-separated list)."""
    parts = []
    for part in url.split(";"):
        scheme, sep, rest = part.partition("://")
        userinfo, at, host = rest.rpartition("@")
        if sep and at and ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            part = f"{scheme}://{user}:***@{host}"
        parts.append(part)
    return ";".join(parts)


def _with_secret_files(environ: Mapping[str, str]) -> Mapping[str, str]:
    """The environment with every ``X_FILE`` of ours (``REDIS_URL_FILE``, ``DATABASE_URL_FILE``,
    ``PUBLISHING_*_FILE``) replaced by ``X`` holding the file's content: how Docker and Kubernetes
    hand over secrets without putting them in the environment. Errors never echo the content."""
    resolved = dict(environ)
    for file_name, path in environ.items():
        name = file_name.removesuffix("_FILE")
        if name == file_name or not (name in ("REDIS_URL", "DATABASE_URL") or name.startswith("PUBLISHING_")):
            continue
        if environ.get(name, "").strip():
            raise ConfigError(f"{name} and {file_name} are both set: set one of them")
        try:
            value = Path(path.strip()).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{file_name}={path!r} is not valid: cannot read the file ({reason})") from None
        if not value:
            raise ConfigError(f"{file_name}={path!r} is not valid: the file is empty")
        resolved[name] = value
    return resolved


_RETRY_KNOBS = ("MAX_RETRIES", "RETRY_BASE_S", "RETRY_MAX_BACKOFF_S", "RETRY_JITTER_S", "RETRY_AFTER_MAX_S")
# Every PUBLISHING_* variable something of ours reads: ``Settings.from_env``'s, then the
# processes' own (the worker's metrics port, logging, Flower, the API's command line and
# ``make run``). One list, so a misspelled name is caught at start-up.
KNOWN_VARIABLES = frozenset(
    {
        *(f"PUBLISHING_{knob}" for knob in _RETRY_KNOBS),
        *(f"PUBLISHING_{p.name}_{knob}" for p in Priority for knob in _RETRY_KNOBS),
        "PUBLISHING_REDIS_SENTINEL_MASTER", "PUBLISHING_TARGETS", "PUBLISHING_API_TOKENS",
        "PUBLISHING_INSECURE_NO_AUTH", "PUBLISHING_HTTP_TIMEOUT_S",
        "PUBLISHING_BREAKER_FAILURE_THRESHOLD", "PUBLISHING_BREAKER_OPEN_TIMEOUT_S",
        "PUBLISHING_BREAKER_HALF_OPEN_PROBES", "PUBLISHING_BREAKER_SUCCESS_THRESHOLD",
        "PUBLISHING_BREAKER_MAX_DEFERRAL_S", "PUBLISHING_TRACKING_CAPACITY", "PUBLISHING_TRACKING_TTL_S",
        "PUBLISHING_DEDUP_WINDOW_S", "PUBLISHING_MAX_BODY_BYTES", "PUBLISHING_MAX_ALERTS_PER_REQUEST",
        "PUBLISHING_MAX_LABELS", "PUBLISHING_MAX_ANNOTATIONS", "PUBLISHING_MAX_LABEL_NAME_CHARS",
        "PUBLISHING_MAX_VALUE_CHARS", "PUBLISHING_MAX_METADATA_DEPTH", "PUBLISHING_MAX_METADATA_BYTES",
        "PUBLISHING_VISIBILITY_TIMEOUT_S", "PUBLISHING_KEY_PREFIX", "PUBLISHING_RECONCILE_INTERVAL_S",
        "PUBLISHING_RECONCILE_GRACE_S", "PUBLISHING_HISTORY", "PUBLISHING_HISTORY_RETENTION_DAYS",
        "PUBLISHING_HISTORY_FLUSH_INTERVAL_S",
        # the processes
        "PUBLISHING_WORKER_METRICS_PORT", "PUBLISHING_LOG_LEVEL", "PUBLISHING_LOG_FORMAT",
        "PUBLISHING_FLOWER_WORKER_CONTROL", "PUBLISHING_VAR_DIR", "PUBLISHING_API_PORT",
        "PUBLISHING_API_URL", "PUBLISHING_API_TOKEN", "PUBLISHING_UI_SECRET",
        # deploy/compose.yaml's image, often exported in the same shell
        "PUBLISHING_IMAGE",
    }
)  # fmt: skip


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line for each ``PUBLISHING_*`` variable nothing reads (a ``_FILE`` twin of a known one
    is known), naming the closest known name."""
    known = KNOWN_VARIABLES | {f"{name}_FILE" for name in KNOWN_VARIABLES}
    lines = []
    for name in sorted(environ):
        if name.startswith("PUBLISHING_") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            lines.append(f"{name} is not a setting and is ignored{hint}")
    return lines


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    for line in unknown_variables(environ):
        log.warning("%s", line)


# The time limits of one publish run (docs/design.md (Retries)), from the longest HTTP timeout
# in use: the connect wait (at most CONNECT_WAIT_MAX_S) and the response (the timeout), then
# BOOKKEEPING_S for Redis and the DLQ write, then UNWIND_S for the soft limit's exception.
CONNECT_WAIT_MAX_S = 5.0
BOOKKEEPING_S = 5.0
UNWIND_S = 5.0


@dataclass(frozen=True)
class TimeLimits:
    """``soft_s`` and ``hard_s`` for the publish task, derived from ``longest_timeout_s`` (set
    by ``source``: PUBLISHING_HTTP_TIMEOUT_S or a target) and kept below the visibility timeout."""

    soft_s: float
    hard_s: float
    longest_timeout_s: float
    source: str


def time_limits(settings: Settings, target_timeouts_s: Mapping[str, float] | None = None) -> TimeLimits:
    """The task's limits for these settings and targets' own ``timeout_s``; ``ConfigError``
    when an attempt that uses its whole timeout could outlive the visibility timeout, since
    Redis would then hand the job still running to a second worker."""
    source, timeout_s = "PUBLISHING_HTTP_TIMEOUT_S", settings.http_timeout_s
    for name, target_timeout_s in sorted((target_timeouts_s or {}).items()):
        if target_timeout_s > timeout_s:
            source, timeout_s = f"target {name!r} timeout_s", target_timeout_s
    attempt_s = timeout_s + min(timeout_s, CONNECT_WAIT_MAX_S)
    # The hard limit ends the run 1 s before its message could be restored to another worker.
    ceiling_s = settings.visibility_timeout_s - 1
    if attempt_s + 1 >= ceiling_s:
        raise ConfigError(
            f"{source}={timeout_s:g} is not valid: one attempt may take {attempt_s:g} s (connect and "
            f"response), which does not end well before PUBLISHING_VISIBILITY_TIMEOUT_S="
            f"{settings.visibility_timeout_s:g}, so a job still running would be handed to a second "
            "worker; lower the timeout or raise the visibility timeout"
        )
    hard_s = min(attempt_s + BOOKKEEPING_S + UNWIND_S, ceiling_s)
    soft_s = min(attempt_s + BOOKKEEPING_S, hard_s - 1)
    return TimeLimits(soft_s=soft_s, hard_s=hard_s, longest_timeout_s=timeout_s, source=source)


@dataclass(frozen=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    # With a ``sentinel://h1:26379;sentinel://h2:26379`` REDIS_URL: the monitored master's name.
    redis_sentinel_master: str = "mymaster"
    database_url: str = DEFAULT_DATABASE_URL
    targets_path: Path | None = None
    api_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Development only: with no tokens, every caller of the API, from any address, is admin.
    insecure_no_auth: bool = False
    retry: Mapping[Priority, RetryPolicy] = field(
        default_factory=lambda: {p: RetryPolicy() for p in Priority}
    )
    http_timeout_s: float = 10.0
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    tracking_capacity: int = 10_000
    tracking_ttl_s: float = 86_400.0
    dedup_window_s: float = 300.0
    max_body_bytes: int = 1_048_576
    max_alerts_per_request: int = 1_000
    # Caps on each alert (docs/design.md (Alerts)); the fingerprint's stays PagerDuty's 255.
    field_limits: FieldLimits = field(default_factory=FieldLimits)
    # Kombu restores an unacknowledged message after this long: it is how soon a job held by
    # a worker that died comes back, and it must outlast every countdown a worker holds as an
    # ETA message. Longer waits (an open breaker, a pause) are held in chunks of
    # ``max_hold_s``; a retry's backoff must fit in one.
    visibility_timeout_s: float = 300.0
    key_prefix: str = "publishing"
    # The reconciler (docs/design.md (Reconciler)): a pass every interval (0: none) in every
    # worker, one at a time fleet-wide; a job is sent again once its message has been missing
    # for longer than the grace period (beyond its countdown).
    reconcile_interval_s: float = 30.0
    reconcile_grace_s: float = 60.0
    # Delivery history (docs/design.md (Delivery history)): every attempt recorded (0: none),
    # moved to the database every flush interval, kept this many days.
    history_enabled: bool = True
    history_retention_days: float = 14.0
    history_flush_interval_s: float = 2.0

    def __repr__(self) -> str:
        # Never print a password: settings reach logs and tracebacks.
        return (
            f"Settings(redis_url={redact_url(self.redis_url)!r}, "
            f"database_url={redact_url(self.database_url)!r}, targets_path={self.targets_path!r}, "
            f"api_tokens=<{len(self.api_tokens)} tokens>, insecure_no_auth={self.insecure_no_auth}, "
            f"key_prefix={self.key_prefix!r})"
        )

    def check_api_access(self) -> None:
        """Raise ``ConfigError`` unless the API has tokens or was explicitly opened to everyone:
        no peer address (loopback included) is trusted instead, as a proxy or port-forward makes
        every client look local."""
        if not self.api_tokens and not self.insecure_no_auth:
            raise ConfigError(
                "PUBLISHING_API_TOKENS is empty: set it (ROLE:TOKEN,...), or set "
                "PUBLISHING_INSECURE_NO_AUTH=1 to let every caller in as admin (development only)"
            )

    def retry_policy(self, priority: Priority) -> RetryPolicy:
        return self.retry[priority]

    @property
    def max_hold_s(self) -> float:
        """The longest countdown a worker holds as an ETA message: half the visibility timeout,
        so a held message is never restored and delivered twice."""
        return self.visibility_timeout_s / 2

    def longest_backoff_s(self) -> float:
        return max(p.max_backoff_s + p.jitter_s for p in self.retry.values())

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        environ = _with_secret_files(environ)
        base = _retry_policy(environ, "PUBLISHING_", RetryPolicy())
        retry = {p: _retry_policy(environ, f"PUBLISHING_{p.name}_", base) for p in Priority}
        targets = environ.get("PUBLISHING_TARGETS", "").strip()
        settings = cls(
            redis_url=environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
            redis_sentinel_master=environ.get("PUBLISHING_REDIS_SENTINEL_MASTER", "").strip() or "mymaster",
            database_url=normalise_database_url(
                environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
            ),
            targets_path=Path(targets) if targets else None,
            api_tokens=parse_api_tokens(environ.get("PUBLISHING_API_TOKENS", "")),
            insecure_no_auth=_switch(environ, "PUBLISHING_INSECURE_NO_AUTH"),
            retry=retry,
            http_timeout_s=_number(environ, "PUBLISHING_HTTP_TIMEOUT_S", 10.0, float, 0.001),
            breaker=BreakerConfig(
                failure_threshold=_number(environ, "PUBLISHING_BREAKER_FAILURE_THRESHOLD", 5, int, 1),
                open_timeout_s=_number(environ, "PUBLISHING_BREAKER_OPEN_TIMEOUT_S", 30.0, float, 0),
                half_open_probes=_number(environ, "PUBLISHING_BREAKER_HALF_OPEN_PROBES", 1, int, 1),
                success_threshold=_number(environ, "PUBLISHING_BREAKER_SUCCESS_THRESHOLD", 2, int, 1),
                max_deferral_s=_number(environ, "PUBLISHING_BREAKER_MAX_DEFERRAL_S", 3600.0, float, 0),
            ),
            tracking_capacity=_number(environ, "PUBLISHING_TRACKING_CAPACITY", 10_000, int, 1),
            tracking_ttl_s=_number(environ, "PUBLISHING_TRACKING_TTL_S", 86_400.0, float, 1),
            dedup_window_s=_number(environ, "PUBLISHING_DEDUP_WINDOW_S", 300.0, float, 0),
            max_body_bytes=_number(environ, "PUBLISHING_MAX_BODY_BYTES", 1_048_576, int, 1),
            max_alerts_per_request=_number(environ, "PUBLISHING_MAX_ALERTS_PER_REQUEST", 1_000, int, 1),
            field_limits=_field_limits(environ),
            visibility_timeout_s=_number(environ, "PUBLISHING_VISIBILITY_TIMEOUT_S", 300.0, float, 1),
            key_prefix=environ.get("PUBLISHING_KEY_PREFIX", "").strip() or "publishing",
            reconcile_interval_s=_number(environ, "PUBLISHING_RECONCILE_INTERVAL_S", 30.0, float, 0),
            reconcile_grace_s=_number(environ, "PUBLISHING_RECONCILE_GRACE_S", 60.0, float, 1),
            # On unless set to 0 (an empty value is the default, as for every other setting).
            history_enabled=_switch({"PUBLISHING_HISTORY": "1", **_set(environ)}, "PUBLISHING_HISTORY"),
            history_retention_days=_number(environ, "PUBLISHING_HISTORY_RETENTION_DAYS", 14.0, float, 0.001),
            history_flush_interval_s=_number(environ, "PUBLISHING_HISTORY_FLUSH_INTERVAL_S", 2.0, float, 0.1),
        )
        backoff = settings.longest_backoff_s()
        if settings.visibility_timeout_s < 2 * backoff:
            raise ConfigError(
                f"PUBLISHING_VISIBILITY_TIMEOUT_S={settings.visibility_timeout_s:g} is not valid: it must "
                f"be at least twice the longest retry backoff plus jitter ({backoff:g} s, from "
                "PUBLISHING_*RETRY_MAX_BACKOFF_S and PUBLISHING_*RETRY_JITTER_S), or a held retry would be "
                "delivered twice"
            )
        time_limits(settings)  # the targets' own timeouts are checked where they are loaded
        return settings
