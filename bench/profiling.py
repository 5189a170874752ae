"""Sampling profiles with py-spy (``--subprocesses``, so prefork children and gunicorn
workers are included; ``--nonblocking``, so the target is not paused) and a summary of the
collapsed stacks: where the CPU goes, by function and by library."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.processes import Proc, Supervisor, wait_until

# Libraries by the path py-spy prints for a frame; the first match names the frame's library.
LIBRARIES = (
    ("redis-py", ("redis/",)),
    ("kombu", ("kombu/",)),
    ("celery", ("celery/",)),
    ("billiard", ("billiard/",)),
    ("vine/amqp", ("vine/", "amqp/")),
    ("http client", ("requests/", "urllib3/", "http/client.py", "idna/", "charset_normalizer/")),
    ("json", ("json/",)),
    ("logging", ("logging/", "workers/logs.py")),
    ("prometheus_client", ("prometheus_client/",)),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("flask/werkzeug", ("flask/", "werkzeug/")),
    ("gunicorn", ("gunicorn/",)),
    ("publishing (domain)", ("publishing/",)),
    ("workers (ours)", ("workers/",)),
    ("api (ours)", ("api/",)),
    ("socket/ssl/select", ("socket.py", "selectors.py", "ssl.py")),
    ("uuid/hashlib/hmac", ("uuid.py", "hashlib.py", "hmac.py")),
)


def _library(frame: str) -> str:
    location = frame[frame.rfind("(") + 1 :]
    for name, needles in LIBRARIES:
        if any(n in location for n in needles):
            return name
    return "other"


def _function(frame: str) -> str:
    """``name (file)`` without the line number."""
    head, _, location = frame.rpartition(" (")
    return f"{head} ({location.rsplit(':', 1)[0]})" if head else frame


class PySpy:
    """``py-spy record`` of a process tree until ``stop()``."""

    def __init__(self, supervisor: Supervisor, name: str, pid: int, out: Path, rate: int = 200) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.path.exists(binary):
            raise RuntimeError("py-spy is not installed: pip install py-spy (the bench extra has it)")
        self.out = out
        self._supervisor = supervisor
        self.proc: Proc = supervisor.start(
            f"py-spy-{name}",
            [
                binary, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
                "--rate", str(rate), "--format", "raw", "-o", str(out),
            ],
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.alive():
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                wait_until(lambda: not self.proc.alive(), 60, "py-spy to write its profile", 0.2)
            finally:
                self._supervisor.stop(self.proc, timeout_s=5)


def _summarise(stacks: list[tuple[list[str], int]], top: int) -> dict[str, Any]:
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_lib: Counter[str] = Counter()
    incl_lib: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        self_fn[_function(frames[-1])] += count
        self_lib[_library(frames[-1])] += count
        for fn in {_function(f) for f in frames}:
            incl_fn[fn] += count
        for lib in {_library(f) for f in frames}:
            incl_lib[lib] += count

    def pct(counter: Counter[str], n: int) -> list[list[Any]]:
        return [[k, round(100 * v / total, 1)] for k, v in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "self_by_library_pct": pct(self_lib, len(LIBRARIES) + 1),
        "inclusive_by_library_pct": pct(incl_lib, len(LIBRARIES) + 1),
        "self_by_function_pct": pct(self_fn, top),
        "inclusive_by_function_pct": pct(incl_fn, top * 2),
    }


def analyse(raw: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive time by function and by library, as percentages of the samples
    (CPU samples only: py-spy leaves out idle threads), for the parent process (Celery's
    consumer, gunicorn's arbiter) and for its children (prefork pool processes, gunicorn
    workers) apart. Loopback TCP is charged to the sender, so a socket send's self time is
    mostly the kernel's work for one round trip."""
    by_role: dict[str, list[tuple[list[str], int]]] = {"parent": [], "children": []}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        parts = stack.split(";")
        # py-spy nests a child's stack under its parent's process frame.
        depth = sum(1 for f in parts if f.startswith("process "))
        frames = [f for f in parts if not f.startswith(("process ", "thread "))]
        if frames:
            by_role["parent" if depth <= 1 else "children"].append((frames, int(count_text)))
    total = sum(c for stacks in by_role.values() for _, c in stacks)
    return {
        "samples": total,
        "share_pct": {
            role: round(100 * sum(c for _, c in stacks) / total, 1) if total else 0.0
            for role, stacks in by_role.items()
        },
        **{role: _summarise(stacks, top) for role, stacks in by_role.items() if stacks},
    }
