"""What every scenario shares: the options of the run, a private working directory with a
supervisor, Redis and the sink, and the JSON result file with the machine's facts."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.processes import ROOT, Supervisor
from bench.services import RedisServer, start_sink
from bench.sink import SinkClient

RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Options:
    quick: bool = False
    profile: bool = False
    results_dir: Path = RESULTS_DIR
    concurrency: int = 4
    keep: bool = False


@dataclass
class Env:
    name: str
    run_dir: Path
    supervisor: Supervisor
    redis: RedisServer
    sink: SinkClient


@contextmanager
def environment(name: str, options: Options) -> Iterator[Env]:
    """A private directory, Redis and sink for one scenario; every process it started is
    stopped when the scenario ends, however it ends. The directory (logs) is kept on failure."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"publishing-bench-{name}-"))
    supervisor = Supervisor(run_dir)
    ok = False
    try:
        redis = RedisServer(supervisor, run_dir / "redis")
        sink = start_sink(supervisor, run_dir)
        yield Env(name, run_dir, supervisor, redis, sink)
        ok = True
    finally:
        supervisor.close()
        if ok and not options.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            print(f"[bench] {name}: logs kept in {run_dir}", flush=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_facts(redis_version: str | None = None) -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "celery": _version("celery"),
        "kombu": _version("kombu"),
        "redis_py": _version("redis"),
        "redis_server": redis_version or "?",
        "gunicorn": _version("gunicorn"),
        "requests": _version("requests"),
        "commit": _commit(),
        "load_average": list(os.getloadavg()),
    }


def write_result(options: Options, name: str, figures: dict[str, Any], started: datetime) -> Path:
    options.results_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "scenario": name,
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": options.quick,
        "note": (
            "Figures on a shared 2-core machine are noisy: compare each figure with the reference "
            "measured in the same run, and re-measure on a quiet machine before quoting absolutes."
        ),
        **figures,
    }
    path = options.results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.rename(path)
    return path
