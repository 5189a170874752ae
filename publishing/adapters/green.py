"""psycopg2 cooperative under gevent: libpq waits in C, so without a wait callback every DLQ
write of a ``-P gevent`` worker would stop all of its greenlets until the database answers.
With it, a query waits like a socket read and the other jobs go on."""

from __future__ import annotations

from typing import Any

from publishing.adapters.sql import CONNECT_TIMEOUT_S


def make_psycopg2_cooperative() -> None:
    """Install the wait callback (once gevent has patched the process; a no-op otherwise)."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return
    from psycopg2 import extensions

    extensions.set_wait_callback(_wait)


def _wait(conn: Any) -> None:
    from gevent.socket import wait_read, wait_write
    from psycopg2 import OperationalError, extensions

    # libpq ignores its connect_timeout for a connection polled this way: the wait keeps it.
    # A query's wait is bounded by the task's time limits instead.
    limit_s = float(CONNECT_TIMEOUT_S) if conn.status == extensions.STATUS_SETUP else None
    while True:
        state = conn.poll()
        try:
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                wait_read(conn.fileno(), timeout=limit_s)
            elif state == extensions.POLL_WRITE:
                wait_write(conn.fileno(), timeout=limit_s)
            else:
                raise OperationalError(f"unexpected state {state!r} polling the database connection")
        except TimeoutError:
            raise OperationalError(
                f"timeout expired: the database did not answer within {limit_s} s"
            ) from None
