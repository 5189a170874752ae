"""Resident memory of process trees, sampled on a thread while a scenario runs (VmRSS of
every process in the tree, summed: a prefork worker's children and gunicorn's workers count)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from bench.processes import process_tree, rss_kb

# Growth of a tree's RSS from 10 % to 100 % of a run that still counts as flat.
FLAT_TOLERANCE = 0.10


class RssSampler:
    def __init__(self, trees: Mapping[str, int], interval_s: float = 1.0) -> None:
        self._trees = dict(trees)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.samples: list[tuple[float, dict[str, int]]] = []

    def _sample(self) -> None:
        now = time.time()
        reading = {name: sum(rss_kb(p) for p in process_tree(pid)) for name, pid in self._trees.items()}
        self.samples.append((now, reading))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()

    def summary(self) -> dict[str, Any]:
        """Per tree: peak, the readings at 10 % and 100 % of the run, and whether it stayed flat."""
        out: dict[str, Any] = {}
        if not self.samples:
            return out
        start = self.samples[0][0]
        for name in self._trees:
            series = [(t - start, reading[name] / 1024) for t, reading in self.samples]
            at_10 = series[min(len(series) - 1, len(series) // 10)][1]
            at_end = series[-1][1]
            out[name] = {
                "peak_mib": round(max(v for _, v in series), 1),
                "at_10pct_mib": round(at_10, 1),
                "at_100pct_mib": round(at_end, 1),
                "growth_pct": round(100 * (at_end - at_10) / at_10, 1) if at_10 else None,
                "flat": bool(at_10) and at_end <= at_10 * (1 + FLAT_TOLERANCE),
                "series": [[round(t, 1), round(v, 1)] for t, v in series],
            }
        return out
