"""Round trips and connections counted inside the processes under test (see
``bench/instrument/sitecustomize.py``): the environment that turns counting on, and the
per-process files summed by role."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

INSTRUMENT_DIR = Path(__file__).resolve().parent / "instrument"


def script_names() -> dict[str, str]:
    """The product's Lua scripts (the stems of their ``.lua`` files) by the SHA-1 prefix an
    EVALSHA names them by: the digest of the text exactly as the adapters load it."""
    from publishing.adapters.redis.breaker import gated_admission_text
    from publishing.adapters.redis.client import script_stems, script_text

    names = {hashlib.sha1(script_text(name).encode()).hexdigest()[:8]: name for name in script_stems()}
    # order_admit.lua runs with the gate's and the admission's scripts before it.
    names[hashlib.sha1(gated_admission_text().encode()).hexdigest()[:8]] = "order_admit"
    return names


def _label(label: str, names: dict[str, str]) -> str:
    label = label.removeprefix("redis:")
    for sha, name in names.items():
        label = label.replace(f"EVALSHA:{sha}", f"EVALSHA:{name}")
    return label


def instrument_env(count_dir: Path | None, task_events: bool = True) -> dict[str, str]:
    """The environment that loads ``bench/instrument`` into a process: counting into
    ``count_dir`` and/or the product without task events; empty when neither is wanted."""
    env: dict[str, str] = {}
    if count_dir is not None:
        env["BENCH_COUNT_DIR"] = str(count_dir)
    if not task_events:
        env["BENCH_NO_TASK_EVENTS"] = "1"
    if env:
        env["PYTHONPATH"] = str(INSTRUMENT_DIR)
    return env


class Counting:
    def __init__(self, run_dir: Path, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"counts-{name}-", dir=run_dir))

    def env(self) -> dict[str, str]:
        return instrument_env(self.dir)

    def read(self, parent_pid: int, per: int, settle_s: float = 0.6) -> dict[str, Any]:
        """Counts per job (``per``), for the parent process (Celery's consumer, gunicorn's
        arbiter) and for its children (prefork pool processes, gunicorn workers)."""
        time.sleep(settle_s)  # the processes write every 0.25 s
        roles: dict[str, dict[str, int]] = {"parent": {}, "children": {}}
        for path in self.dir.glob("*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            tally = roles["parent" if data["pid"] == parent_pid else "children"]
            for label, count in data["counts"].items():
                tally[label] = tally.get(label, 0) + int(count)
        names = script_names()
        out: dict[str, Any] = {}
        for role, counts in roles.items():
            redis_total = sum(v for k, v in counts.items() if k.startswith("redis:"))
            out[role] = {
                "redis_round_trips_per_job": round(redis_total / per, 2) if per else None,
                "redis_connects": counts.get("connect:redis", 0),
                "http_connects": counts.get("connect:http", 0),
                "by_command_per_job": {
                    _label(k, names): round(v / per, 2)
                    for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
                    if k.startswith("redis:") and v / per >= 0.01
                },
            }
        return out
