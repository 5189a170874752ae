"""The retry policy of docs/design.md (Errors, Retries) as pure functions that return a decision."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from publishing.classification import ErrorType

# 2**62 seconds already dwarfs any cap; stopping the exponent there keeps the float finite.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryLater:
    delay_s: float


@dataclass(frozen=True)
class GiveUp:
    reason: str


RetryDecision = RetryLater | GiveUp


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_s: float = 1.0
    max_backoff_s: float = 60.0
    jitter_s: float = 1.0
    retry_after_max_s: float = 300.0

    def backoff_s(self, retry: int) -> float:
        """The wait before retry ``retry`` (0-based), without jitter."""
        return min(self.base_s * 2.0 ** min(retry, _MAX_EXPONENT), self.max_backoff_s)

    def countdown_s(
        self,
        retry: int,
        *,
        retry_after_s: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """Exponential backoff plus additive jitter in [0, jitter_s), raised to the target's
        ``Retry-After`` when it asked for longer (that request capped at retry_after_max_s)."""
        wait = self.backoff_s(retry) + rng() * self.jitter_s
        if retry_after_s is not None and retry_after_s > 0:
            wait = max(wait, min(retry_after_s, self.retry_after_max_s))
        return wait

    def should_retry(self, error_type: ErrorType, retries_done: int) -> bool:
        return error_type is not ErrorType.PERMANENT and retries_done < self.max_retries

    def decide(
        self,
        error_type: ErrorType,
        retries_done: int,
        *,
        retry_after_s: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> RetryDecision:
        if error_type is ErrorType.PERMANENT:
            return GiveUp("permanent error")
        if retries_done >= self.max_retries:
            return GiveUp(f"gave up after {retries_done} retries")
        return RetryLater(self.countdown_s(retries_done, retry_after_s=retry_after_s, rng=rng))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
