"""Reading requests: the JSON body (malformed -> 400; over the cap -> 413, raised by werkzeug)
and typed query parameters, where a bad value is a 400 that names the parameter."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from flask import request

from api.errors import ApiError
from publishing.alert import parse_time
from publishing.classification import ErrorType
from publishing.dlq import DLQFilter
from publishing.priority import Priority

E = TypeVar("E", bound=StrEnum)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


_REQUIRED: Any = object()


def json_body(*, default: Any = _REQUIRED) -> Any:
    """The request's JSON, whatever its Content-Type says. An empty body is a 400 unless a
    ``default`` is given (a literal ``null`` is not empty: it is parsed like any value)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if default is _REQUIRED:
            raise ApiError(400, "malformed_json", "the request needs a JSON body")
        return default
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {message}") from None


def check_query(allowed: Iterable[str]) -> None:
    """A parameter the endpoint does not know is a 400: a typo (``?stat=failed``) must not
    quietly widen a listing or a purge."""
    known = set(allowed)
    for name in request.args:
        if name not in known:
            expected = sorted(known)
            raise invalid_parameter(
                name,
                request.args.get(name),
                f"is not a parameter of this endpoint; expected one of {expected}"
                if expected
                else "is not a parameter of this endpoint, which takes none",
                expected,
            )


def invalid_parameter(name: str, value: Any, message: str, allowed: list[str] | None = None) -> ApiError:
    details: dict[str, Any] = {"parameter": name, "value": value}
    if allowed is not None:
        details["allowed"] = allowed
    return ApiError(400, "invalid_parameter", f"parameter {name!r}: {message}", details)


def invalid_field(name: str, value: Any, message: str, allowed: list[str] | None = None) -> ApiError:
    details: dict[str, Any] = {"problems": [{"field": name, "message": message}]}
    if allowed is not None:
        details["allowed"] = allowed
    return ApiError(422, "invalid_body", f"{name}: {message}", details)


Fail = Callable[..., ApiError]


def enum_value(enum: type[E], name: str, value: Any, fail: Fail = invalid_parameter) -> E | None:
    if value is None:
        return None
    allowed = [member.value for member in enum]
    if not isinstance(value, str) or value not in allowed:
        raise fail(name, value, f"must be one of {'|'.join(allowed)}", allowed)
    return enum(value)


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter(name, raw, "must be an integer") from None
    if not minimum <= value <= maximum:
        raise invalid_parameter(name, raw, f"must be from {minimum} to {maximum}")
    return value


def bool_value(name: str, value: Any, fail: Fail = invalid_parameter) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise fail(name, value, "must be true or false")


def time_value(name: str, value: Any, fail: Fail = invalid_parameter) -> datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_time(value)
    except (ValueError, OverflowError):  # parse_time overflows past year 9999 or before year 1 in UTC
        raise fail(name, value, "must be an RFC 3339 timestamp, such as 2026-01-31T12:00:00Z") from None


def string_value(name: str, value: Any, fail: Fail = invalid_parameter) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(name, value, "must be a non-empty string")
    if "\x00" in value:  # no name holds one, and PostgreSQL refuses it in a query
        raise fail(name, value, "must not contain a NUL byte")
    return value


def dlq_filter(values: Mapping[str, Any], fail: Fail = invalid_parameter) -> DLQFilter:
    """A DLQ filter from query parameters or a JSON body (``fail`` says which answer a bad
    value gets)."""
    return DLQFilter(
        target=string_value("target", values.get("target"), fail),
        error_type=enum_value(ErrorType, "error_type", values.get("error_type"), fail),
        priority=enum_value(Priority, "priority", values.get("priority"), fail),
        replayed=bool_value("replayed", values.get("replayed"), fail),
        failed_after=time_value("failed_after", values.get("failed_after"), fail),
        failed_before=time_value("failed_before", values.get("failed_before"), fail),
    )


def parse_duration(text: str) -> float:
    """``168h``, ``7d``, ``30m``, ``90s``, ``1h30m``, ``500ms``, ``2w`` into seconds."""
    if not DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 168h, 7d, 30m or 90s")
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))
