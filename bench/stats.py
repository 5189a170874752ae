"""Percentiles and distributions of latency samples, without numpy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# The quantiles kept for a chart's CDF: every 0.5 % plus the far tail.
CDF_POINTS = [i / 200 for i in range(201)] + [0.999]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def summary_ms(values_s: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/max and a CDF, in milliseconds."""
    ordered = sorted(v * 1000 for v in values_s)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "min_ms": round(ordered[0], 2),
        "p50_ms": round(quantile(ordered, 0.50), 2),
        "p90_ms": round(quantile(ordered, 0.90), 2),
        "p95_ms": round(quantile(ordered, 0.95), 2),
        "p99_ms": round(quantile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(sum(ordered) / len(ordered), 2),
        "cdf_ms": [[round(q, 4), round(quantile(ordered, q), 3)] for q in sorted(set(CDF_POINTS))],
    }


def rate_per_s(times: Sequence[float]) -> float:
    """Events per second from the first to the last of ``times``."""
    if len(times) < 2:
        return math.nan
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else math.nan


def goal(measured: float | None, target: float, higher_is_better: bool) -> dict[str, Any]:
    met = (
        measured is not None
        and not math.isnan(measured)
        and (measured >= target if higher_is_better else measured <= target)
    )
    return {"measured": measured, "target": target, "met": met}
