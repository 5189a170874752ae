"""An attempt's overall deadline while a target's answer head (status line and headers) comes
in. A socket timeout bounds each wait for bytes, so a target sending a header byte every few
seconds would keep an attempt going for ever: a watchdog shuts the connection's socket down
when the attempt's deadline passes, and the attempt ends as a timeout.

The connections of ``deadline_adapter()`` arm the watchdog of the attempt running in their
context (``attempt_deadline``) while they wait for the answer head; the body is read against
the same deadline by the publisher itself. The attempt is a context variable, not a
thread-local: each thread and each greenlet of an I/O pool has its own, whether or not
gevent patched ``threading`` before this module was imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# A deadline is cut at most this long after it passes: the watchdog wakes no more often, however
# many attempts end (each leaves an entry behind, dropped when its time comes).
CUT_SLACK_S = 0.1


class Watch:
    """The deadline of the attempt running in this context; ``fired`` once it cut a socket."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False

    def arm(self, sock: socket.socket | None) -> _Armed | None:
        if sock is None:
            return None
        return _watchdog.arm(self, sock)

    def _cut(self, sock: socket.socket) -> None:
        self.fired = True
        # Unblocks the recv the attempt waits in; the connection is not reused.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@dataclass(order=True)
class _Armed:
    deadline: float
    order: int
    watch: Watch = field(compare=False)
    sock: socket.socket = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class _Watchdog:
    """One thread a process cuts the sockets of attempts past their deadline: arming an attempt
    costs a heap push, not a timer thread (a greenlet, on gevent) of its own. A forked child
    starts its own on its first attempt."""

    def __init__(self) -> None:
        self._start_afresh()
        os.register_at_fork(after_in_child=self._start_afresh)

    def _start_afresh(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._heap: list[_Armed] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, watch: Watch, sock: socket.socket) -> _Armed:
        armed = _Armed(watch.deadline, next(self._order), watch, sock)
        with self._lock:
            heapq.heappush(self._heap, armed)
            first = self._heap[0] is armed
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="publishing-http-deadlines", daemon=True
                )
                self._thread.start()
        if first:
            self._wake.set()
        return armed

    def _run(self) -> None:
        while True:
            due: list[_Armed] = []
            with self._lock:
                self._wake.clear()
                now = time.monotonic()
                while self._heap and (self._heap[0].cancelled or self._heap[0].deadline <= now):
                    armed = heapq.heappop(self._heap)
                    if not armed.cancelled:
                        due.append(armed)
                wait = max(CUT_SLACK_S, self._heap[0].deadline - now) if self._heap else None
            for armed in due:
                armed.watch._cut(armed.sock)
            self._wake.wait(wait)


_watchdog = _Watchdog()


_attempt: contextvars.ContextVar[Watch | None] = contextvars.ContextVar("attempt", default=None)


@contextmanager
def attempt_deadline(deadline: float) -> Iterator[Watch]:
    """``deadline`` is on ``time.monotonic``'s clock."""
    watch = Watch(deadline)
    token = _attempt.set(watch)
    try:
        yield watch
    finally:
        _attempt.reset(token)


class _WatchedHead:
    """Mixed into a urllib3 connection: the wait for the answer head is watched."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = _attempt.get()
        armed = watch.arm(self.sock) if watch is not None else None
        try:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            if armed is not None:
                armed.cancel()


class _HTTPConnection(_WatchedHead, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedHead, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
