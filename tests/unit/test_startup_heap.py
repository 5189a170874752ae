"""A long-running process (an API worker, a delivery worker and each of its pool's children)
keeps the objects it built while starting out of the cyclic garbage collector's full passes,
so that such a pass does not stop every job of the process for tens of milliseconds
(docs/operations.md (Worker pools)). Each case runs in a process of its own: freezing is for
the life of a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Well below what a started process holds (about 100,000 objects), well above what one
# request or job leaves behind.
STARTUP_OBJECTS = 20_000


def _run(code: str, tmp_path: Path) -> dict[str, int]:
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n- name: hook\n  type: webhook\n  url: http://127.0.0.1:9/hook\n")
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dlq.db'}",
        "PUBLISHING_TARGETS": str(targets),
        "PUBLISHING_INSECURE_NO_AUTH": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_api_keeps_what_it_built_at_start_out_of_full_collections(tmp_path: Path) -> None:
    seen = _run(
        """
        import gc, json
        import api.wsgi
        print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}))
        """,
        tmp_path,
    )
    assert seen["frozen"] > STARTUP_OBJECTS
    assert seen["tracked"] < seen["frozen"]


def test_a_worker_keeps_what_it_built_at_start_out_of_full_collections(tmp_path: Path) -> None:
    # The main process once the worker is ready (a gevent or threads worker runs its jobs
    # there), and a prefork child once it has started.
    seen = _run(
        """
        import gc, json
        import workers.main
        from workers import observability
        observability._on_worker_ready()
        main = gc.get_freeze_count()
        gc.unfreeze()
        observability._on_process_init()
        child = gc.get_freeze_count()
        print(json.dumps({"main": main, "child": child, "tracked": len(gc.get_objects())}))
        """,
        tmp_path,
    )
    assert seen["main"] > STARTUP_OBJECTS
    assert seen["child"] > STARTUP_OBJECTS
    assert seen["tracked"] < seen["child"]


def test_what_a_process_builds_after_start_is_still_collected(tmp_path: Path) -> None:
    seen = _run(
        """
        import gc, json
        from publishing.adapters.heap import freeze_startup_heap
        freeze_startup_heap()
        gc.disable()  # only the explicit pass below, which must find every cycle
        class Node:
            pass
        for _ in range(1000):
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        print(json.dumps({"collected": gc.collect()}))
        """,
        tmp_path,
    )
    assert seen["collected"] >= 2000
