# Over 300 lines: both input formats and their field-by-field validation.
"""The alert model and its two input formats (Alertmanager webhook v4 and enriched alerts).

Parsing validates the whole request first and raises one ``InvalidAlertError`` that lists
every problem with its field path, so a request is accepted whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from publishing.errors import InvalidAlertError

# Alertmanager writes Go's zero time for "has not ended".
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|z|[+-]\d{2}:\d{2})$")


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    NOISE = "noise"


@dataclass(frozen=True)
class Classification:
    severity: Severity
    confidence: float
    reasoning: str = ""
    recommendations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "confidence": self.confidence,
            "reasoning": self.reasoning,
            "recommendations": list(self.recommendations),
        }


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    alert_name: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "alert_name": self.alert_name,
            "status": self.status.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": format_time(self.starts_at),
            "ends_at": format_time(self.ends_at) if self.ends_at else None,
            "generator_url": self.generator_url,
        }


@dataclass(frozen=True)
class EnrichedAlert:
    """An alert with its optional classification: the unit a job carries."""

    alert: Alert
    classification: Classification | None = None
    enrichment_metadata: Mapping[str, Any] = field(default_factory=dict)
    # The Alertmanager webhook's group fields (``ENVELOPE_FIELDS``) the alert came in, so the
    # ``alertmanager`` format forwards them unchanged; None for an enriched alert.
    envelope: Mapping[str, Any] | None = None

    @property
    def severity(self) -> str | None:
        """The classification's severity when there is one, else the ``severity`` label."""
        if self.classification is not None:
            return self.classification.severity.value
        return self.alert.labels.get("severity")

    def to_dict(self) -> dict[str, Any]:
        data = {
            "alert": self.alert.to_dict(),
            "classification": self.classification.to_dict() if self.classification else None,
            "enrichment_metadata": dict(self.enrichment_metadata),
        }
        if self.envelope is not None:
            data["envelope"] = dict(self.envelope)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnrichedAlert:
        """Rebuild an alert that ``to_dict`` wrote (the form a job carries, and a DLQ row)."""
        enriched = parse_enriched(data)[0]
        envelope = data.get("envelope")
        return replace(enriched, envelope=dict(envelope)) if isinstance(envelope, dict) else enriched


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """RFC 3339 with any number of fractional digits (Go writes nanoseconds)."""
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # a dot and at most microseconds
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}")
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None


def derive_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable fingerprint from the sorted label set, for alerts that come without one."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"field": path, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidAlertError(self.items)


@dataclass(frozen=True)
class FieldLimits:
    """Caps on what one alert may carry, so nothing accepted is too big to queue, pickle,
    store in Redis and PostgreSQL, or match a regex against (docs/design.md (Alerts)).
    The fingerprint cap is PagerDuty's ``dedup_key`` limit."""

    max_labels: int = 64
    max_annotations: int = 64
    max_name_chars: int = 256
    max_value_chars: int = 8192
    max_fingerprint_chars: int = 255
    max_metadata_depth: int = 16
    max_metadata_bytes: int = 65_536


DEFAULT_LIMITS = FieldLimits()


def _metadata_problem(value: Any, limits: FieldLimits) -> str | None:
    """Why metadata cannot be carried: too deep, not JSON, a non-finite number, too big.
    Walked without recursion, so no depth of input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limits.max_metadata_depth:
                return f"is nested deeper than {limits.max_metadata_depth} levels"
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict) and not all(isinstance(k, str) for k in item):
                return "must have string keys"
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number that is not finite (NaN or Infinity)"
        elif not (item is None or isinstance(item, str | int | float | bool)):
            return "must hold only JSON values"
    text = json.dumps(value, ensure_ascii=False)
    if not _encodable(text):
        return "is not valid Unicode text (a lone surrogate)"
    if len(text.encode("utf-8")) > limits.max_metadata_bytes:
        return f"is larger than {limits.max_metadata_bytes} bytes"
    return None


def _encodable(value: str) -> bool:
    """JSON may carry lone surrogates (``"\\ud800"``) that no UTF-8 store accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string_map(
    value: Any, path: str, problems: _Problems, limits: FieldLimits, max_items: int
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(path, "must be an object of strings")
        return {}
    if len(value) > max_items:
        problems.add(path, f"has {len(value)} entries; at most {max_items} are allowed")
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        if not _encodable(str(key)):
            problems.add(path, "has a key that is not valid Unicode text")
        elif len(str(key)) > limits.max_name_chars:
            problems.add(path, f"has a key longer than {limits.max_name_chars} characters")
        elif isinstance(item, str) and len(item) > limits.max_value_chars:
            problems.add(f"{path}.{key}", f"is longer than {limits.max_value_chars} characters")
        elif not isinstance(item, str):
            problems.add(f"{path}.{key}", "must be a string")
        elif not _encodable(item):
            problems.add(f"{path}.{key}", "is not valid Unicode text (a lone surrogate)")
        else:
            result[str(key)] = item
    return result


def _text_field(
    value: Any, path: str, problems: _Problems, max_chars: int = DEFAULT_LIMITS.max_value_chars
) -> str:
    """An optional string field: absent is empty; any other type, text that is not valid
    Unicode, or text over the cap is a problem."""
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(path, "must be a string")
        return ""
    if len(value) > max_chars:
        problems.add(path, f"is longer than {max_chars} characters")
        return ""
    if not _encodable(value):
        problems.add(path, "is not valid Unicode text (a lone surrogate)")
        return ""
    return value


_ZERO = datetime(1, 1, 1, tzinfo=UTC)


def _time(value: Any, path: str, problems: _Problems, *, required: bool) -> datetime | None:
    parsed: datetime | None = None
    if isinstance(value, str) and value:
        try:
            parsed = parse_time(value)
        except ValueError as exc:
            problems.add(path, str(exc) if _encodable(value) else "is not an RFC 3339 timestamp")
            return None
    elif value not in (None, ""):
        problems.add(path, "must be an RFC 3339 timestamp string")
        return None
    # Go's zero time, however it is spelled, means "not set".
    if parsed is None or parsed == _ZERO:
        if required:
            problems.add(path, "is required (an RFC 3339 timestamp)")
        return None
    return parsed


def _alert(
    raw: Any, path: str, problems: _Problems, *, snake: bool, limits: FieldLimits = DEFAULT_LIMITS
) -> Alert | None:
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return None
    start = len(problems.items)
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        problems.add(f"{path}.status", f"must be 'firing' or 'resolved', got {status!r}")
    labels = _string_map(raw.get("labels"), f"{path}.labels", problems, limits, limits.max_labels)
    annotations = _string_map(
        raw.get("annotations"), f"{path}.annotations", problems, limits, limits.max_annotations
    )
    name_key = "alert_name" if snake else None
    alert_name = labels.get("alertname") or (raw.get(name_key) if name_key else None)
    if name_key and raw.get(name_key) is not None:
        _text_field(raw.get(name_key), f"{path}.{name_key}", problems)
    labels_refused = any(p["field"].startswith(f"{path}.labels") for p in problems.items[start:])
    if not labels.get("alertname") and not labels_refused:
        if snake and isinstance(alert_name, str) and alert_name:
            labels["alertname"] = alert_name
        else:
            problems.add(f"{path}.labels.alertname", "is required")
    starts_key, ends_key, url_key = (
        ("starts_at", "ends_at", "generator_url") if snake else ("startsAt", "endsAt", "generatorURL")
    )
    starts_at = _time(raw.get(starts_key), f"{path}.{starts_key}", problems, required=True)
    ends_at = _time(raw.get(ends_key), f"{path}.{ends_key}", problems, required=False)
    if starts_at and ends_at and ends_at < starts_at:
        problems.add(f"{path}.{ends_key}", f"may not precede {starts_key}")
    generator_url = _text_field(raw.get(url_key), f"{path}.{url_key}", problems)
    fingerprint = raw.get("fingerprint")
    if fingerprint is not None and (
        not isinstance(fingerprint, str) or not fingerprint.strip() or not _encodable(fingerprint)
    ):
        problems.add(f"{path}.fingerprint", "must be a non-empty string of valid Unicode text")
    elif fingerprint is not None and len(fingerprint) > limits.max_fingerprint_chars:
        problems.add(f"{path}.fingerprint", f"is longer than {limits.max_fingerprint_chars} characters")
    if len(problems.items) > start or starts_at is None:
        return None
    return Alert(
        fingerprint=fingerprint or derive_fingerprint(labels),
        alert_name=labels["alertname"],
        status=AlertStatus(str(status)),
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
    )


def _classification(raw: Any, path: str, problems: _Problems) -> Classification | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return None
    start = len(problems.items)
    severity = raw.get("severity")
    if not isinstance(severity, str) or severity not in {s.value for s in Severity}:
        problems.add(f"{path}.severity", f"must be one of critical|warning|info|noise, got {severity!r}")
    confidence = raw.get("confidence", 0.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        problems.add(f"{path}.confidence", "must be a number from 0 to 1")
    reasoning = _text_field(raw.get("reasoning"), f"{path}.reasoning", problems)
    recommendations = raw.get("recommendations")
    recommendations = [] if recommendations is None else recommendations
    if not isinstance(recommendations, list) or not all(
        isinstance(r, str) and _encodable(r) for r in recommendations
    ):
        problems.add(f"{path}.recommendations", "must be a list of strings")
    if len(problems.items) > start:
        return None
    return Classification(
        severity=Severity(str(severity)),
        confidence=float(confidence),
        reasoning=reasoning,
        recommendations=tuple(recommendations),
    )


def parse_alertmanager(
    payload: Any, *, max_alerts: int | None = None, limits: FieldLimits = DEFAULT_LIMITS
) -> list[EnrichedAlert]:
    """Parse an Alertmanager webhook (version 4) into alerts, or raise ``InvalidAlertError``."""
    problems = _Problems()
    if not isinstance(payload, dict):
        problems.add("$", "must be an Alertmanager webhook object")
        problems.raise_if_any()
    version = payload.get("version")
    if version is not None and str(version) != "4":
        problems.add("version", f"only version '4' is supported, got {version!r}")
    raw_alerts = payload.get("alerts")
    if not isinstance(raw_alerts, list):
        problems.add("alerts", "is required and must be a list")
        problems.raise_if_any()
    _check_count(raw_alerts, max_alerts, problems)
    problems.raise_if_any()
    envelope = _envelope(payload, problems, limits)
    alerts = [
        _alert(raw, f"alerts[{i}]", problems, snake=False, limits=limits) for i, raw in enumerate(raw_alerts)
    ]
    problems.raise_if_any()
    return [EnrichedAlert(alert=a, envelope=envelope) for a in alerts if a is not None]


# The webhook's group fields an alert keeps (``status`` is the alert's own, ``version`` is 4).
ENVELOPE_TEXT_FIELDS = ("receiver", "externalURL", "groupKey")
ENVELOPE_MAP_FIELDS = ("groupLabels", "commonLabels", "commonAnnotations")
ENVELOPE_FIELDS = (*ENVELOPE_TEXT_FIELDS, *ENVELOPE_MAP_FIELDS, "truncatedAlerts")


def _envelope(payload: dict[str, Any], problems: _Problems, limits: FieldLimits) -> dict[str, Any]:
    """The group fields Alertmanager sent, those present, each under the caps of an alert's own."""
    envelope: dict[str, Any] = {}
    for name in ENVELOPE_TEXT_FIELDS:
        if name in payload:
            envelope[name] = _text_field(payload[name], name, problems, limits.max_value_chars)
    for name in ENVELOPE_MAP_FIELDS:
        if name in payload:
            most = limits.max_annotations if name == "commonAnnotations" else limits.max_labels
            envelope[name] = _string_map(payload[name], name, problems, limits, most)
    if "truncatedAlerts" in payload:
        truncated = payload["truncatedAlerts"]
        if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
            problems.add("truncatedAlerts", "must be a whole number, 0 or more")
        else:
            envelope["truncatedAlerts"] = truncated
    return envelope


def parse_enriched(
    payload: Any, *, max_alerts: int | None = None, limits: FieldLimits = DEFAULT_LIMITS
) -> list[EnrichedAlert]:
    """Parse one enriched alert, a list of them, or ``{"alerts": [...]}``."""
    problems = _Problems()
    if isinstance(payload, dict) and "alerts" in payload and "alert" not in payload:
        items, prefix = payload["alerts"], "alerts"
    elif isinstance(payload, list):
        items, prefix = payload, "$"
    else:
        items, prefix = [payload], None
    if not isinstance(items, list):
        problems.add("alerts", "must be a list")
        problems.raise_if_any()
    _check_count(items, max_alerts, problems)
    problems.raise_if_any()
    result: list[EnrichedAlert] = []
    for i, item in enumerate(items):
        path = f"{prefix}[{i}]" if prefix else "$"
        if not isinstance(item, dict) or "alert" not in item:
            problems.add(path, "must be an object with an 'alert' field")
            continue
        alert = _alert(
            item["alert"], f"{path}.alert" if prefix else "alert", problems, snake=True, limits=limits
        )
        cpath = f"{path}.classification" if prefix else "classification"
        classification = _classification(item.get("classification"), cpath, problems)
        metadata = item.get("enrichment_metadata")
        metadata = {} if metadata is None else metadata
        mpath = f"{path}.enrichment_metadata" if prefix else "enrichment_metadata"
        if not isinstance(metadata, dict):
            problems.add(mpath, "must be an object")
            metadata = {}
        elif (problem := _metadata_problem(metadata, limits)) is not None:
            problems.add(mpath, problem)
            metadata = {}
        if alert is not None:
            result.append(EnrichedAlert(alert, classification, metadata))
    problems.raise_if_any()
    return result


def _check_count(items: list[Any], max_alerts: int | None, problems: _Problems) -> None:
    if not items:
        problems.add("alerts", "must hold at least one alert")
    elif max_alerts is not None and len(items) > max_alerts:
        problems.add("alerts", f"holds {len(items)} alerts; at most {max_alerts} are accepted a request")
