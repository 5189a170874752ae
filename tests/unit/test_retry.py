"""The retry policy of docs/design.md (Errors, Retries): backoff, jitter, Retry-After and the retry decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publishing.classification import ErrorType
from publishing.retry import GiveUp, RetryLater, RetryPolicy, parse_retry_after

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
LOWEST = lambda: 0.0  # noqa: E731
HIGHEST = lambda: 0.999999  # noqa: E731


def policy(**overrides: float) -> RetryPolicy:
    return RetryPolicy(**overrides)  # type: ignore[arg-type]


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def test_defaults_are_those_of_the_spec() -> None:
    assert RetryPolicy() == RetryPolicy(
        max_retries=5, base_s=1.0, max_backoff_s=60.0, jitter_s=1.0, retry_after_max_s=300.0
    )


def test_backoff_sequence_doubles_up_to_the_cap() -> None:
    assert [policy().backoff_s(n) for n in range(10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


@pytest.mark.parametrize(
    ("base_s", "cap_s", "expected"),
    [
        pytest.param(0.5, 10, [0.5, 1, 2, 4, 8, 10], id="half-second-base"),
        pytest.param(3, 5, [3, 5, 5, 5, 5, 5], id="cap-reached-at-once"),
        pytest.param(2, 1000, [2, 4, 8, 16, 32, 64], id="high-cap"),
    ],
)
def test_backoff_with_other_knobs(base_s: float, cap_s: float, expected: list[float]) -> None:
    p = policy(base_s=base_s, max_backoff_s=cap_s)
    assert [p.backoff_s(n) for n in range(6)] == expected


@pytest.mark.parametrize(
    ("retry", "rng", "expected"),
    [
        pytest.param(0, LOWEST, 1.0, id="first-no-jitter"),
        pytest.param(0, HIGHEST, 1.999999, id="first-max-jitter"),
        pytest.param(3, LOWEST, 8.0, id="fourth-no-jitter"),
        pytest.param(10, HIGHEST, 60.999999, id="capped-max-jitter"),
    ],
)
def test_countdown_adds_jitter_below_jitter_s(retry: int, rng: object, expected: float) -> None:
    assert policy().countdown_s(retry, rng=rng) == pytest.approx(expected)  # type: ignore[arg-type]


def test_jitter_is_scaled_by_jitter_s() -> None:
    p = policy(jitter_s=5.0)
    assert p.countdown_s(0, rng=lambda: 0.5) == pytest.approx(3.5)
    assert policy(jitter_s=0.0).countdown_s(2, rng=HIGHEST) == 4.0


@pytest.mark.parametrize(
    ("retry", "retry_after_s", "expected"),
    [
        pytest.param(0, 30, 30.0, id="raises-short-backoff"),
        pytest.param(8, 10, 60.0, id="never-lowers-backoff"),
        pytest.param(0, 10_000, 300.0, id="capped-at-retry-after-max"),
        pytest.param(0, 0, 1.0, id="zero-ignored"),
        pytest.param(0, None, 1.0, id="none"),
    ],
)
def test_retry_after(retry: int, retry_after_s: float | None, expected: float) -> None:
    assert policy().countdown_s(retry, retry_after_s=retry_after_s, rng=LOWEST) == expected


def test_retry_after_cap_is_a_knob() -> None:
    assert policy(retry_after_max_s=45).countdown_s(0, retry_after_s=120, rng=LOWEST) == 45.0


@pytest.mark.parametrize("retry", [100, 1_100, 10**6, 10**30], ids=["100", "1100", "million", "1e30"])
def test_huge_retry_numbers_do_not_overflow(retry: int) -> None:
    p = policy()
    assert p.backoff_s(retry) == 60.0
    assert 60.0 <= p.countdown_s(retry, rng=HIGHEST) < 61.0


@pytest.mark.parametrize(
    ("error_type", "retries_done", "expected"),
    [
        pytest.param(ErrorType.PERMANENT, 0, GiveUp, id="permanent-first-attempt"),
        pytest.param(ErrorType.TRANSIENT, 0, RetryLater, id="transient-0"),
        pytest.param(ErrorType.TRANSIENT, 4, RetryLater, id="transient-4"),
        pytest.param(ErrorType.TRANSIENT, 5, GiveUp, id="transient-exhausted-5"),
        pytest.param(ErrorType.TRANSIENT, 9, GiveUp, id="transient-beyond"),
        pytest.param(ErrorType.UNKNOWN, 0, RetryLater, id="unknown-0"),
        pytest.param(ErrorType.UNKNOWN, 4, RetryLater, id="unknown-4"),
        pytest.param(ErrorType.UNKNOWN, 5, GiveUp, id="unknown-exhausted"),
    ],
)
def test_decide(error_type: ErrorType, retries_done: int, expected: type) -> None:
    p = policy()
    decision = p.decide(error_type, retries_done, rng=LOWEST)
    assert isinstance(decision, expected)
    assert p.should_retry(error_type, retries_done) is (expected is RetryLater)


def test_max_retries_5_means_six_attempts() -> None:
    p = policy()
    attempts = 1
    while isinstance(p.decide(ErrorType.TRANSIENT, attempts - 1, rng=LOWEST), RetryLater):
        attempts += 1
    assert attempts == 6


def test_decide_waits_the_countdown_of_that_retry() -> None:
    p = policy()
    assert p.decide(ErrorType.TRANSIENT, 3, rng=LOWEST) == RetryLater(8.0)
    assert p.decide(ErrorType.UNKNOWN, 0, retry_after_s=20, rng=LOWEST) == RetryLater(20.0)


def test_max_retries_zero_never_retries() -> None:
    assert isinstance(policy(max_retries=0).decide(ErrorType.TRANSIENT, 0), GiveUp)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="seconds-with-spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(http_date(NOW + timedelta(seconds=90)), 90.0, id="http-date-future"),
        pytest.param("Wed, 01 May 2024 10:01:00 GMT", 60.0, id="http-date-literal"),
        pytest.param(http_date(NOW - timedelta(hours=1)), 0.0, id="http-date-past"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="garbage-word"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("Wed, 99 Foo 2024", None, id="garbage-date"),
        pytest.param("\u00b2", None, id="superscript-digit"),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@given(
    retry=st.integers(min_value=0, max_value=10_000),
    # rng() is in [0, 1); 0.999999 as the top keeps float rounding out of the strict bound.
    draw=st.floats(min_value=0.0, max_value=0.999999),
    base_s=st.floats(min_value=0.01, max_value=10),
    cap_s=st.floats(min_value=0.01, max_value=3600),
    jitter_s=st.floats(min_value=0.01, max_value=10),
)
def test_countdown_stays_within_its_bounds(
    retry: int, draw: float, base_s: float, cap_s: float, jitter_s: float
) -> None:
    p = policy(base_s=base_s, max_backoff_s=cap_s, jitter_s=jitter_s)
    countdown = p.countdown_s(retry, rng=lambda: draw)
    assert min(base_s * 2.0 ** min(retry, 64), cap_s) <= countdown < cap_s + jitter_s
