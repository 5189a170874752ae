"""How busy the machine was with work that is not the benchmark's: the CPU the whole machine
spent (``/proc/stat``) minus what the harness and every process it started spent, sampled
every second. Quoted with every result, so that a figure measured on a busy machine says so."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from bench.processes import cpu_s, process_tree

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """user + nice + system + steal, in seconds (interrupt time is left out: loopback
    traffic's softirq time belongs to nobody in particular)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, steal = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[7])
    return (user + nice + system + steal) / _TICKS_PER_S


class NoiseMeter:
    def __init__(self, interval_s: float = 1.0) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="noise-meter", daemon=True)
        self._ours: dict[int, float] = {}
        self.foreign_s = 0.0
        self.ours_s = 0.0
        self.wall_s = 0.0
        self.samples: list[float] = []  # foreign cores, each interval

    def _ours_now(self) -> dict[int, float]:
        return {pid: cpu_s(pid) for pid in process_tree(os.getpid())}

    def _run(self) -> None:
        busy, ours, at = _machine_busy_s(), self._ours_now(), time.monotonic()
        while not self._stop.wait(self._interval_s):
            busy2, ours2, at2 = _machine_busy_s(), self._ours_now(), time.monotonic()
            # A process born in this interval counts from zero.
            mine = sum(max(0.0, v - ours.get(pid, 0.0)) for pid, v in ours2.items())
            foreign = max(0.0, (busy2 - busy) - mine)
            self.foreign_s += foreign
            self.ours_s += mine
            self.wall_s += at2 - at
            self.samples.append(foreign / (at2 - at))
            busy, ours, at = busy2, ours2, at2

    def __enter__(self) -> NoiseMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> dict[str, Any]:
        wall = self.wall_s or 1.0
        ordered = sorted(self.samples)
        return {
            "other_load_cores_mean": round(self.foreign_s / wall, 2),
            "other_load_cores_p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2) if ordered else None,
            "benchmark_cores_mean": round(self.ours_s / wall, 2),
            "nproc": os.cpu_count(),
            "quiet": self.foreign_s / wall < 0.1,
        }
