"""Counts, in every process started with this directory on PYTHONPATH and
``BENCH_COUNT_DIR`` set, the Redis round trips (one ``send_packed_command`` is one round
trip: a pipeline or MULTI/EXEC sends all its commands at once) by first command, and the new
TCP connections redis-py and urllib3 open. Each process writes ``<pid>.json`` there every
quarter second. Nothing of the product is changed: only the two libraries are wrapped.
``BENCH_NO_TASK_EVENTS=1`` also turns the product's task events off, for a what-if run."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import threading
import time
from typing import Any

_DIR = os.environ.get("BENCH_COUNT_DIR", "")
_counts: dict[str, int] = {}
_pid = 0
_lock = threading.Lock()


def _dump_forever(pid: int) -> None:
    last: dict[str, int] = {}
    while os.getpid() == pid:
        time.sleep(0.25)
        with _lock:
            now = dict(_counts)
        if now != last:
            path = os.path.join(_DIR, f"{pid}.json")
            with open(path + ".tmp", "w") as f:
                json.dump({"pid": pid, "ppid": os.getppid(), "counts": now}, f)
            os.replace(path + ".tmp", path)
            last = now


def _count(label: str) -> None:
    global _pid
    pid = os.getpid()
    with _lock:
        if pid != _pid:
            # First event in this process (or in a child after a fork): start afresh.
            _pid = pid
            _counts.clear()
            threading.Thread(target=_dump_forever, args=(pid,), name="bench-counts", daemon=True).start()
        _counts[label] = _counts.get(label, 0) + 1


def _arg(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _command_name(packed: Any) -> str:
    """The first command of a packed request (its subcommand, or an EVALSHA's SHA prefix)."""
    first = packed[0] if isinstance(packed, list | tuple) and packed else packed
    if isinstance(first, memoryview):
        first = first.tobytes()
    if not isinstance(first, bytes | bytearray):
        return "?"
    lines = bytes(first[:200]).split(b"\r\n")
    name = lines[2].decode(errors="replace").upper() if len(lines) > 2 else "?"
    if len(lines) > 4 and name in ("EVALSHA", "EVAL"):
        name += ":" + lines[4].decode(errors="replace")[:8]
    elif len(lines) > 4 and name in ("SCRIPT", "CLIENT"):
        name += " " + lines[4].decode(errors="replace").upper()
    return name


def _pipeline_name(commands: Any) -> str:
    names = []
    for args, _ in commands:
        name = _arg(args[0]).upper() if args else "?"
        if name in ("EVALSHA", "EVAL") and len(args) > 1:
            name += ":" + _arg(args[1])[:8]
        names.append(name)
    # Run-length: a request's 100 dedup claims read "100xSET", not a hundred names.
    runs: list[list[Any]] = []
    for name in names:
        if runs and runs[-1][1] == name:
            runs[-1][0] += 1
        else:
            runs.append([1, name])
    return "+".join(name if n == 1 else f"{n}x{name}" for n, name in runs)


_local = threading.local()


def _install() -> None:
    try:
        import redis.client as redis_client
        import redis.connection as redis_connection
        import urllib3.connection as urllib3_connection
    except ImportError:
        return
    send = redis_connection.AbstractConnection.send_packed_command
    redis_connect = redis_connection.AbstractConnection.connect
    http_connect = urllib3_connection.HTTPConnection.connect

    def counted_send(self: Any, command: Any, check_health: bool = True) -> Any:
        if not getattr(_local, "in_pipeline", False):
            _count("redis:" + _command_name(command))
        return send(self, command, check_health)

    def counted_pipeline(kind: str, run: Any) -> Any:
        # A pipeline sends all its commands in one write: one round trip, named by them all.
        def wrapped(self: Any, connection: Any, commands: Any, raise_on_error: Any) -> Any:
            _count(f"redis:{kind}[{_pipeline_name(commands)}]")
            _local.in_pipeline = True
            try:
                return run(self, connection, commands, raise_on_error)
            finally:
                _local.in_pipeline = False

        return wrapped

    def counted_redis_connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The pool calls connect() on every checkout; only a connection without a socket
        # really connects.
        if getattr(self, "_sock", None) is None:
            _count("connect:redis")
        return redis_connect(self, *args, **kwargs)

    def counted_http_connect(self: Any) -> Any:
        _count("connect:http")
        return http_connect(self)

    redis_client.Pipeline._execute_transaction = counted_pipeline(  # type: ignore[method-assign]
        "MULTI", redis_client.Pipeline._execute_transaction
    )
    redis_client.Pipeline._execute_pipeline = counted_pipeline(  # type: ignore[method-assign]
        "PIPELINE", redis_client.Pipeline._execute_pipeline
    )
    redis_connection.AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]
    redis_connection.AbstractConnection.connect = counted_redis_connect  # type: ignore[method-assign]
    urllib3_connection.HTTPConnection.connect = counted_http_connect  # type: ignore[method-assign]


if _DIR:
    _install()


class _NoTaskEvents(importlib.abc.MetaPathFinder):
    """What-if runs (``BENCH_NO_TASK_EVENTS=1``): the product's Celery configuration without
    task events, to measure what they cost. The product's files are not touched."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "workers.config":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def patched_exec(module: Any) -> None:
            exec_module(module)
            original = module.celery_config

            def celery_config(settings: Any) -> dict[str, Any]:
                conf = dict(original(settings))
                conf.update(worker_send_task_events=False, task_send_sent_event=False)
                return conf

            module.celery_config = celery_config

        loader.exec_module = patched_exec  # type: ignore[method-assign]
        return spec


if os.environ.get("BENCH_NO_TASK_EVENTS"):
    sys.meta_path.insert(0, _NoTaskEvents())
