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
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Watch:
    """The deadline of the attempt running in this context; ``fired`` once it cut a socket."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False

    def arm(self, sock: socket.socket | None) -> threading.Timer | None:
        if sock is None:
            return None
        timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._cut, args=(sock,))
        timer.daemon = True
        timer.start()
        return timer

    def _cut(self, sock: socket.socket) -> None:
        self.fired = True
        # Unblocks the recv the attempt waits in; the connection is not reused.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
        timer = watch.arm(self.sock) if watch is not None else None
        try:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            if timer is not None:
                timer.cancel()


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
