"""How a format shows an alert's severity: one value for each severity an alert can carry, read
the same way by every format."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from publishing.alert import AlertStatus, EnrichedAlert

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class BySeverity(Generic[T]):
    """A format's colour, priority or severity name for each alert severity.

    ``error`` (a label some rules use between critical and warning) shows as ``critical`` and
    ``noise`` as ``info`` unless the format tells them apart; a missing or unknown severity
    shows as a warning. ``resolved``, where set, is what a resolved alert shows whatever its
    severity.
    """

    critical: T
    error: T | None = None
    warning: T
    info: T
    noise: T | None = None
    resolved: T | None = None

    def named(self, severity: str | None) -> T:
        """The value for a severity name, in any case."""
        match (severity or "").lower():
            case "critical":
                return self.critical
            case "error":
                return self.critical if self.error is None else self.error
            case "info":
                return self.info
            case "noise":
                return self.info if self.noise is None else self.noise
            case _:
                return self.warning

    def of(self, enriched: EnrichedAlert) -> T:
        """The value this alert shows: ``resolved`` for a resolved alert where set, else its
        severity's."""
        if self.resolved is not None and enriched.alert.status is AlertStatus.RESOLVED:
            return self.resolved
        return self.named(enriched.severity)

    def worst_firing(self, alerts: Iterable[EnrichedAlert], among: tuple[str, ...], otherwise: T) -> T:
        """The value of the first severity of ``among`` (worst first) a firing alert carries,
        else ``otherwise``."""
        firing = {(a.severity or "").lower() for a in alerts if a.alert.status is AlertStatus.FIRING}
        return next((self.named(s) for s in among if s in firing), otherwise)


def severity_name(enriched: EnrichedAlert) -> str:
    """The alert's severity in lower case, ``unknown`` when it has none."""
    return (enriched.severity or "").lower() or "unknown"
